/**
 * The index objects of one chain, as listed, and the walk that resolves a restore point to the
 * indexes to fold (docs/design.md §4.7): from seq s, take the key index at s if there is one,
 * else the delta at s with the smallest base (the widest, i.e. newest, merge result) and continue
 * at its base. Every index object ever written is a correct representation of a committed state,
 * so the walk is correct whatever subset of merge results a crash left behind.
 */
import type { ObjectStore } from '../storage/index.ts';
import { RepositoryError } from './errors.ts';
import { deltaIndexKey, indexesPrefix, keyIndexKey, parseDataKey } from './keys.ts';

export interface IndexRef {
  readonly key: string;
  readonly kind: 'key' | 'delta';
  readonly seq: number;
  readonly baseSeq: number | undefined;
}

export class ChainState {
  readonly vmId: string;
  readonly chainId: string;
  readonly #keySeqs = new Set<number>();
  readonly #deltaBases = new Map<number, number[]>();
  #maxSeq = -1;

  constructor(vmId: string, chainId: string) {
    this.vmId = vmId;
    this.chainId = chainId;
  }

  static async load(store: ObjectStore, vmId: string, chainId: string): Promise<ChainState> {
    const state = new ChainState(vmId, chainId);
    for await (const info of store.list(indexesPrefix(vmId, chainId))) {
      const parsed = parseDataKey(info.key);
      if (parsed?.type === 'key') state.addKey(parsed.seq);
      else if (parsed?.type === 'delta') state.addDelta(parsed.seq, parsed.baseSeq);
    }
    return state;
  }

  addKey(seq: number): void {
    this.#keySeqs.add(seq);
    this.#maxSeq = Math.max(this.#maxSeq, seq);
  }

  addDelta(seq: number, baseSeq: number): void {
    if (baseSeq >= seq) return;
    const bases = this.#deltaBases.get(seq) ?? [];
    bases.push(baseSeq);
    this.#deltaBases.set(seq, bases);
    this.#maxSeq = Math.max(this.#maxSeq, seq);
  }

  /** Highest seq of any index object (committed or not): a new backup takes maxSeq + 1. */
  get maxSeq(): number {
    return this.#maxSeq;
  }

  get isEmpty(): boolean {
    return this.#maxSeq < 0;
  }

  refAt(seq: number): IndexRef | undefined {
    if (this.#keySeqs.has(seq)) {
      return {
        key: keyIndexKey(this.vmId, this.chainId, seq),
        kind: 'key',
        seq,
        baseSeq: undefined,
      };
    }
    const bases = this.#deltaBases.get(seq);
    if (bases === undefined || bases.length === 0) return undefined;
    const baseSeq = Math.min(...bases);
    return {
      key: deltaIndexKey(this.vmId, this.chainId, seq, baseSeq),
      kind: 'delta',
      seq,
      baseSeq,
    };
  }

  /** The indexes to fold for restore point `seq`, key first. REPO_CHAIN_BROKEN if none leads to a key. */
  walk(seq: number): IndexRef[] {
    const refs: IndexRef[] = [];
    let at = seq;
    for (;;) {
      const ref = this.refAt(at);
      if (ref === undefined) {
        throw new RepositoryError(
          'REPO_CHAIN_BROKEN',
          `chain ${this.vmId}/${this.chainId}: no index at seq ${at} (walking from ${seq})`,
          { details: { vmId: this.vmId, chainId: this.chainId, seq: at } },
        );
      }
      refs.push(ref);
      if (ref.kind === 'key' || ref.baseSeq === undefined) break;
      at = ref.baseSeq;
    }
    return refs.reverse();
  }
}
