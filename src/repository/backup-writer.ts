/**
 * Writes one VM restore point (docs/design.md §4.7 "write order"): for each disk, hash each block,
 * skip zero blocks, compress and put the blocks the chain does not hold yet (bounded number of
 * puts in flight: back-pressure on the source; block puts are deferred and made durable by one
 * store sync barrier), then the disk's index; last, the VM manifest
 * (put-if-absent), which is the commit point. Memory: the base fold, the new index and the puts in
 * flight; independent of the amount of data.
 */
import { randomBytes } from 'node:crypto';
import { Semaphore, throwIfAborted } from '../core/index.ts';
import { isZeroBlock, type DiskSource } from '../disk/index.ts';
import { MAX_SEQ } from './constants.ts';
import { BlockEncoder } from './block-codec.ts';
import { hashBlock } from './block-hash.ts';
import { ChainState } from './chain-state.ts';
import { RepositoryError } from './errors.ts';
import type { FoldedDisk } from './folded-disk.ts';
import { encodeIndex, IndexBuilder, ZERO_HASH } from './index-codec.ts';
import { blockKey, checkId, deltaIndexKey, keyIndexKey, pointKey } from './keys.ts';
import {
  formatPointManifest,
  pointManifestSchema,
  type DiskEntry,
  type PointManifest,
} from './manifest.ts';
import { findDisk, type Repository } from './repository.ts';

export interface DiskBackupRequest {
  readonly diskId: string;
  readonly name?: string;
  readonly source: DiskSource;
  /** 'key' starts a new chain; 'delta' extends the chain of the disk in `basePointId`. */
  readonly mode: 'key' | 'delta';
  readonly sourceReferenceId?: string;
  readonly transport?: Readonly<Record<string, unknown>>;
}

export interface BackupRequest {
  readonly vmId: string;
  readonly pointId?: string;
  readonly createdMs?: number;
  readonly jobId?: string;
  readonly scheduleId?: string;
  readonly vm?: Readonly<Record<string, unknown>>;
  /** Base of the deltas (default: the newest restore point of the VM). */
  readonly basePointId?: string;
  readonly disks: readonly DiskBackupRequest[];
  /** Disks written at once (default 1). */
  readonly diskConcurrency?: number;
  /** Block puts in flight (default: the store's concurrency, at most 8). */
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
}

/** A sortable, unique restore-point id: UTC time then random hex. */
export function newPointId(createdMs: number): string {
  const time = new Date(createdMs).toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${time}-${randomBytes(4).toString('hex')}`;
}

interface DiskWriteResult {
  readonly entry: DiskEntry;
}

export async function writeBackup(
  repository: Repository,
  request: BackupRequest,
): Promise<PointManifest> {
  checkId('vmId', request.vmId);
  const createdMs = request.createdMs ?? repository.clock.nowMs();
  const pointId = request.pointId ?? newPointId(createdMs);
  checkId('pointId', pointId);
  const ids = new Set(request.disks.map((disk) => disk.diskId));
  if (ids.size !== request.disks.length || request.disks.length === 0) {
    throw new RepositoryError('REPO_INVALID_REQUEST', 'a backup needs disks with distinct ids');
  }
  let base: PointManifest | undefined;
  if (request.disks.some((disk) => disk.mode === 'delta')) {
    if (request.basePointId !== undefined) {
      base = await repository.readPoint(request.vmId, request.basePointId);
    } else {
      base = (await repository.listPoints(request.vmId)).at(-1);
    }
    if (base === undefined) {
      throw new RepositoryError(
        'REPO_INVALID_REQUEST',
        `no base restore point for a delta of ${request.vmId}`,
      );
    }
  }
  for (const disk of request.disks) {
    checkId('diskId', disk.diskId);
    if (
      disk.mode === 'delta' &&
      !(base?.disks.some((d) => d.diskId === disk.diskId) ?? false) &&
      disk.source.kind !== 'full'
    ) {
      throw new RepositoryError(
        'REPO_INVALID_REQUEST',
        `disk ${disk.diskId} is not in the base point: it needs a full read to start its chain`,
      );
    }
  }
  // Disks in parallel (`diskConcurrency`, default 1); entries keep the request's order. A disk
  // absent from the base (added to the VM since) starts its chain, from a full source.
  const entries: DiskEntry[] = new Array<DiskEntry>(request.disks.length);
  const diskSlots = new Semaphore(Math.max(1, request.diskConcurrency ?? 1));
  await Promise.all(
    request.disks.map((disk, i) =>
      diskSlots.use(async () => {
        const baseEntry =
          disk.mode === 'delta' && base?.disks.some((d) => d.diskId === disk.diskId) === true
            ? findDisk(base, disk.diskId)
            : undefined;
        entries[i] = (await writeDisk(repository, request, disk, baseEntry)).entry;
      }),
    ),
  );
  const manifest = pointManifestSchema.parse({
    format: 'vmdelta-point',
    formatVersion: 1,
    vmId: request.vmId,
    pointId,
    createdMs,
    jobId: request.jobId ?? null,
    scheduleId: request.scheduleId ?? null,
    vm: request.vm ?? {},
    disks: entries,
  });
  throwIfAborted(request.signal);
  await repository.store.put(pointKey(request.vmId, pointId), formatPointManifest(manifest), {
    ifAbsent: true,
  });
  return manifest;
}

async function writeDisk(
  repository: Repository,
  request: BackupRequest,
  disk: DiskBackupRequest,
  baseEntry: DiskEntry | undefined,
): Promise<DiskWriteResult> {
  const { store, config } = repository;
  const { source } = disk;
  if (source.blockSizeBytes !== config.blockSizeBytes) {
    throw new RepositoryError(
      'REPO_INVALID_REQUEST',
      `disk ${disk.diskId}: source blocks are ${source.blockSizeBytes} bytes, the repository's ${config.blockSizeBytes}`,
    );
  }
  if (disk.mode === 'key' && source.kind !== 'full') {
    throw new RepositoryError(
      'REPO_INVALID_REQUEST',
      `disk ${disk.diskId}: a key backup needs a full source`,
    );
  }
  const vmId = request.vmId;
  let chainId: string;
  let seq: number;
  let baseSeq: number | undefined;
  let baseFold: FoldedDisk | undefined;
  let chainLength = 1;
  if (baseEntry === undefined) {
    chainId = randomBytes(16).toString('hex');
    seq = 0;
  } else {
    chainId = baseEntry.chainId;
    const chain = await ChainState.load(store, vmId, chainId);
    baseFold = await repository.foldDisk(vmId, baseEntry, chain);
    // Backups written to the chain since its key, merged ones included (the key interval counts
    // these: merges keep old blocks alive in the key, only a new key bounds their life).
    chainLength = baseEntry.chainLength + 1;
    baseSeq = baseEntry.seq;
    seq = chain.maxSeq + 1;
    if (seq > MAX_SEQ)
      throw new RepositoryError('REPO_INVALID_REQUEST', `chain ${chainId} is full`);
  }
  const known = baseFold?.hashSet() ?? new Set<string>();
  const builder = new IndexBuilder();
  const encoder = new BlockEncoder(config.compression);
  const concurrency = Math.max(
    1,
    request.concurrency ?? Math.min(8, store.properties.maxConcurrency),
  );
  const slots = new Semaphore(concurrency);
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  let storedBlockCount = 0;
  let storedBytes = 0;
  let sourceBlockCount = 0;

  // For a full read in delta mode, blocks present in the base but absent from the source became zero.
  const zeroedFromBase =
    baseFold !== undefined && source.kind === 'full'
      ? baseFold.present[Symbol.iterator]()
      : undefined;
  let nextBasePresent = zeroedFromBase?.next();
  const emitZeroedBefore = (limit: number): void => {
    while (
      nextBasePresent !== undefined &&
      nextBasePresent.done !== true &&
      nextBasePresent.value < limit
    ) {
      if (!source.blocks.has(nextBasePresent.value)) builder.add(nextBasePresent.value, ZERO_HASH);
      nextBasePresent = zeroedFromBase?.next();
    }
  };

  // Blocks are prepared (hashed, and encoded when a worker pool does it) ahead, in a bounded
  // window, and processed strictly in order: index entries must be ascending.
  interface Prepared {
    readonly index: number;
    readonly hash: Buffer | undefined; // undefined: zero block
    readonly object: Buffer | undefined;
    readonly data: Buffer | undefined;
    /** Gives the source block back once `data` is no longer needed. */
    readonly release?: (() => void) | undefined;
  }
  const pool = repository.blockPoolFor(source.sizeBytes);
  const windowSize = pool === undefined ? 1 : pool.size * 2 + 2;
  const window: Promise<Prepared>[] = [];

  const processPrepared = async (prepared: Prepared): Promise<void> => {
    const { index, hash } = prepared;
    emitZeroedBefore(index);
    const baseHash = baseFold?.hashOf(index);
    if (hash === undefined) {
      if (baseHash !== undefined) builder.add(index, ZERO_HASH);
      return;
    }
    if (baseHash?.equals(hash) === true) return;
    builder.add(index, hash);
    const hashKey = hash.toString('latin1');
    if (known.has(hashKey)) return;
    known.add(hashKey);
    const object = prepared.object ?? encoder.encode(prepared.data ?? Buffer.alloc(0), hash);
    const release = await slots.acquire();
    // Deferred durability: one sync barrier below, before the index names these blocks (§4.7).
    const put = store
      .put(blockKey(vmId, chainId, hash), object, { durable: false })
      .then(() => {
        storedBlockCount += 1;
        storedBytes += object.length;
        pool?.recycleObject(object);
      })
      .catch((error: unknown) => {
        failure ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        release();
        inFlight.delete(put);
      });
    inFlight.add(put);
  };

  // processPrepared uses `data` only before its first await (the encoder copies it).
  const processThenRelease = async (prepared: Prepared): Promise<void> => {
    try {
      await processPrepared(prepared);
    } finally {
      prepared.release?.();
    }
  };

  try {
    for await (const block of source.readBlocks(
      request.signal === undefined ? {} : { signal: request.signal },
    )) {
      if (failure !== undefined) break;
      sourceBlockCount += 1;
      const { index, data, release } = block;
      let prepared: Promise<Prepared>;
      if (isZeroBlock(data)) {
        release?.();
        prepared = Promise.resolve({ index, hash: undefined, object: undefined, data: undefined });
      } else if (pool === undefined) {
        const hash = hashBlock(data, config.hash);
        prepared = Promise.resolve({ index, hash, object: undefined, data, release });
      } else {
        // The pool copies the data in: the block goes back to its source once encoded.
        prepared = pool
          .encode(data)
          .finally(release)
          .then(({ hash, object }) => ({ index, hash, object, data: undefined }));
        prepared.catch(() => undefined); // awaited in order below
      }
      window.push(prepared);
      while (window.length >= windowSize) {
        const head = window.shift();
        if (head !== undefined) await processThenRelease(await head);
      }
    }
    for (let head = window.shift(); head !== undefined; head = window.shift()) {
      await processThenRelease(await head);
    }
  } finally {
    await Promise.allSettled(window);
    await Promise.all(inFlight);
  }
  emitZeroedBefore(Number.MAX_SAFE_INTEGER);
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  throwIfAborted(request.signal);
  // I5: an index is written only once every block it names is durable.
  await store.sync();

  const index = builder.build({
    kind: baseEntry === undefined ? 'key' : 'delta',
    chainId,
    seq,
    baseSeq,
    blockSizeBytes: config.blockSizeBytes,
    diskSizeBytes: source.sizeBytes,
    hash: config.hash,
  });
  const indexKey =
    baseSeq === undefined
      ? keyIndexKey(vmId, chainId, seq)
      : deltaIndexKey(vmId, chainId, seq, baseSeq);
  await store.put(indexKey, encodeIndex(index));
  return {
    entry: {
      diskId: disk.diskId,
      ...(disk.name === undefined ? {} : { name: disk.name }),
      chainId,
      seq,
      writtenAs: baseSeq === undefined ? 'key' : 'delta',
      baseSeq: baseSeq ?? null,
      chainLength,
      sizeBytes: source.sizeBytes,
      blockSizeBytes: config.blockSizeBytes,
      sourceBlockCount,
      indexEntryCount: index.blockIndexes.length,
      storedBlockCount,
      storedBytes,
      sourceReferenceId: disk.sourceReferenceId ?? null,
      transport: disk.transport ?? {},
    },
  };
}
