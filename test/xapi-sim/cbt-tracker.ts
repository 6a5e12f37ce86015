/**
 * XAPI-simulator side: Changed Block Tracking modelled on blktap/sm (xapi.md §7). Each live VDI
 * with CBT on has a chain id and a log of the 64 KiB blocks written since its last snapshot; a
 * snapshot takes the log (sequence number n) and the live VDI starts a fresh one. The logs of a
 * chain outlive destroyed snapshots (sm merges a destroyed VDI's log into its child), so
 * list_changed_blocks(from, to) = OR of the logs (from.seq, to.seq]. The bitmap is encoded as the
 * client expects it (MSB first in each byte): the simulator cannot confirm XAPI's bit order.
 */
import { randomUUID } from 'node:crypto';

export const SIM_CBT_BLOCK_BYTES = 65_536;

export interface CbtPosition {
  readonly chainId: string;
  readonly seq: number;
}

export class CbtTracker {
  /** chain id → (seq → blocks written in that interval). */
  readonly #chains = new Map<string, Map<number, Set<number>>>();
  /** live VDI uuid → its current chain, sequence and open log. */
  readonly #live = new Map<string, { chainId: string; seq: number; log: Set<number> }>();

  enable(liveUuid: string): void {
    if (this.#live.has(liveUuid)) return;
    const chainId = randomUUID();
    this.#chains.set(chainId, new Map());
    this.#live.set(liveUuid, { chainId, seq: 0, log: new Set() });
  }

  disable(liveUuid: string): void {
    this.#live.delete(liveUuid);
  }

  isEnabled(liveUuid: string): boolean {
    return this.#live.has(liveUuid);
  }

  recordWrite(liveUuid: string, offsetBytes: number, lengthBytes: number): void {
    const live = this.#live.get(liveUuid);
    if (live === undefined || lengthBytes <= 0) return;
    const first = Math.floor(offsetBytes / SIM_CBT_BLOCK_BYTES);
    const last = Math.floor((offsetBytes + lengthBytes - 1) / SIM_CBT_BLOCK_BYTES);
    for (let block = first; block <= last; block += 1) live.log.add(block);
  }

  /** Hands the open log to a new snapshot; returns the snapshot's position, if CBT is on. */
  snapshot(liveUuid: string): CbtPosition | undefined {
    const live = this.#live.get(liveUuid);
    if (live === undefined) return undefined;
    live.seq += 1;
    this.#chains.get(live.chainId)?.set(live.seq, live.log);
    live.log = new Set();
    return { chainId: live.chainId, seq: live.seq };
  }

  /** Blocks changed between two snapshot positions, or an error text like sm's. */
  changedBlocks(from: CbtPosition, to: CbtPosition): Set<number> | string {
    if (from.chainId !== to.chainId) return 'Source and target VDI are unrelated';
    if (from.seq >= to.seq) return 'Source VDI is not older than target VDI';
    const chain = this.#chains.get(from.chainId);
    if (chain === undefined) return 'CBT log chain missing';
    const result = new Set<number>();
    for (let seq = from.seq + 1; seq <= to.seq; seq += 1) {
      for (const block of chain.get(seq) ?? []) result.add(block);
    }
    return result;
  }
}

/** Base64 bitmap, one bit per 64 KiB, MSB first, ceil(blocks / 8) bytes. */
export function encodeCbtBitmap(blocks: ReadonlySet<number>, virtualSizeBytes: number): string {
  const blockCount = Math.ceil(virtualSizeBytes / SIM_CBT_BLOCK_BYTES);
  const bytes = Buffer.alloc(Math.ceil(blockCount / 8));
  for (const block of blocks) {
    if (block < blockCount) bytes[block >> 3] = (bytes[block >> 3] ?? 0) | (0x80 >> (block & 7));
  }
  return bytes.toString('base64');
}
