/**
 * A repository on an ObjectStore (docs/design.md §4): init/open, listing and reading restore
 * points, chains and indexes, and reading a restore point's disk. Writing, merging, GC, verify,
 * leases and copy are in their own files and take a Repository.
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { systemClock, type Clock } from '../core/index.ts';
import { StorageError, type GetOptions, type ObjectStore } from '../storage/index.ts';
import {
  BLOCK_HEADER_BYTES,
  CONFIG_FORMAT,
  CONFIG_KEY,
  DEFAULT_BLOCK_SIZE_BYTES,
  DEFAULT_ZSTD_LEVEL,
  FORMAT_VERSION,
  POINTS_PREFIX,
} from './constants.ts';
import {
  formatRepositoryConfig,
  parseRepositoryConfig,
  repositoryConfigSchema,
  type CompressionConfig,
  type RepositoryConfig,
} from './config.ts';
import { ChainState, type IndexRef } from './chain-state.ts';
import { RepositoryError } from './errors.ts';
import { decodeBlockObject } from './block-codec.ts';
import { BlockWorkerPool } from './block-pool.ts';
import { DEFAULT_BLOCK_HASH, type BlockHashName } from './block-hash.ts';
import { FoldedDisk } from './folded-disk.ts';
import { decodeIndex, type ChainIndex } from './index-codec.ts';
import { blockKey, checkId, parsePointKey, pointKey, pointsPrefix } from './keys.ts';
import { parsePointManifest, type DiskEntry, type PointManifest } from './manifest.ts';

export interface OpenOptions {
  readonly clock?: Clock;
  /**
   * Worker threads for hashing and (de)compression; 0 = on the calling thread. Default: automatic,
   * min(2, available parallelism) workers, used for disks of at least 256 MiB (small disks stay
   * on the calling thread: starting workers costs more than it saves). docs/design.md §4.10;
   * call close() to stop the workers.
   */
  readonly blockWorkers?: number;
}

export interface InitOptions extends OpenOptions {
  readonly blockSizeBytes?: number;
  readonly compression?: CompressionConfig;
  /** Block hash of a new repository (default blake3, §4.1). */
  readonly hash?: BlockHashName;
}

export interface InvalidManifest {
  readonly key: string;
  readonly error: RepositoryError;
}

function isNotFound(error: unknown): boolean {
  return error instanceof StorageError && error.code === 'STORAGE_NOT_FOUND';
}

/** Sort order of restore points: creation time, then id. */
export function comparePoints(a: PointManifest, b: PointManifest): number {
  return a.createdMs - b.createdMs || (a.pointId < b.pointId ? -1 : a.pointId > b.pointId ? 1 : 0);
}

/** With automatic `blockWorkers`, disks smaller than this are processed inline. */
const AUTO_WORKERS_MIN_DISK_BYTES = 256 * 1024 * 1024;

export class Repository {
  readonly store: ObjectStore;
  readonly config: RepositoryConfig;
  readonly clock: Clock;
  readonly #blockWorkers: number;
  readonly #autoWorkers: boolean;
  #pool: BlockWorkerPool | undefined;

  private constructor(store: ObjectStore, config: RepositoryConfig, options: OpenOptions) {
    this.store = store;
    this.config = config;
    this.clock = options.clock ?? systemClock;
    this.#autoWorkers = options.blockWorkers === undefined;
    this.#blockWorkers = options.blockWorkers ?? Math.min(2, availableParallelism());
  }

  /** The worker pool for the block CPU work of a disk of `sizeBytes`, or undefined: inline. */
  blockPoolFor(sizeBytes: number): BlockWorkerPool | undefined {
    if (this.#autoWorkers && sizeBytes < AUTO_WORKERS_MIN_DISK_BYTES) return undefined;
    return this.blockPool;
  }

  /** The worker pool for block CPU work, or undefined when configured to work inline. */
  get blockPool(): BlockWorkerPool | undefined {
    if (this.#blockWorkers > 0 && this.#pool === undefined) {
      this.#pool = new BlockWorkerPool(this.#blockWorkers, this.config, this.config.blockSizeBytes);
    }
    return this.#pool;
  }

  /** Stops the worker threads (the store is the caller's to close). */
  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.close();
  }

  /**
   * Creates the repository (config object, put-if-absent), or opens the existing one if it has
   * the parameters given (those not given are the existing repository's, so a repository created
   * with older defaults still opens); REPO_CONFIG_MISMATCH names the first that differs.
   */
  static async init(store: ObjectStore, options: InitOptions = {}): Promise<Repository> {
    const clock = options.clock ?? systemClock;
    const config = repositoryConfigSchema.parse({
      format: CONFIG_FORMAT,
      formatVersion: FORMAT_VERSION,
      repositoryId: randomBytes(16).toString('hex'),
      createdMs: clock.nowMs(),
      blockSizeBytes: options.blockSizeBytes ?? DEFAULT_BLOCK_SIZE_BYTES,
      hash: options.hash ?? DEFAULT_BLOCK_HASH,
      compression: options.compression ?? { codec: 'zstd', level: DEFAULT_ZSTD_LEVEL },
      encryption: null,
    });
    try {
      await store.put(CONFIG_KEY, formatRepositoryConfig(config), { ifAbsent: true });
      return new Repository(store, config, options);
    } catch (error) {
      if (!(error instanceof StorageError && error.code === 'STORAGE_ALREADY_EXISTS')) throw error;
    }
    const existing = await Repository.open(store, options);
    const differing = [
      options.blockSizeBytes !== undefined &&
        existing.config.blockSizeBytes !== options.blockSizeBytes &&
        'block size',
      options.hash !== undefined && existing.config.hash !== options.hash && 'hash',
      options.compression !== undefined &&
        JSON.stringify(existing.config.compression) !== JSON.stringify(config.compression) &&
        'compression',
    ].find((field) => field !== false);
    if (differing !== undefined) {
      throw new RepositoryError(
        'REPO_CONFIG_MISMATCH',
        `${store.properties.displayName} already holds a repository with another ${differing}`,
        { details: { key: CONFIG_KEY, field: differing } },
      );
    }
    return existing;
  }

  static async open(store: ObjectStore, options: OpenOptions = {}): Promise<Repository> {
    let body: Buffer;
    try {
      body = await store.get(CONFIG_KEY);
    } catch (error) {
      if (isNotFound(error)) {
        throw new RepositoryError(
          'REPO_NOT_INITIALIZED',
          `${store.properties.displayName}: no ${CONFIG_KEY}`,
          { details: { key: CONFIG_KEY } },
        );
      }
      throw error;
    }
    return new Repository(store, parseRepositoryConfig(CONFIG_KEY, body), options);
  }

  /** Reads an object referenced by committed state: absence is REPO_OBJECT_MISSING. */
  async getReferenced(key: string, options?: GetOptions): Promise<Buffer> {
    try {
      return await this.store.get(key, undefined, options);
    } catch (error) {
      if (isNotFound(error)) {
        throw new RepositoryError('REPO_OBJECT_MISSING', `${key} is referenced but absent`, {
          cause: error,
          details: { key },
        });
      }
      throw error;
    }
  }

  async listVms(): Promise<string[]> {
    const vms = new Set<string>();
    for await (const info of this.store.list(POINTS_PREFIX)) {
      const parsed = parsePointKey(info.key);
      if (parsed !== undefined) vms.add(parsed.vmId);
    }
    return [...vms].sort();
  }

  /** Every restore point (of one VM or all), sorted; invalid manifests reported apart, not thrown. */
  async scanPoints(
    vmId?: string,
  ): Promise<{ points: PointManifest[]; invalid: InvalidManifest[] }> {
    if (vmId !== undefined) checkId('vmId', vmId);
    const points: PointManifest[] = [];
    const invalid: InvalidManifest[] = [];
    for await (const info of this.store.list(
      vmId === undefined ? POINTS_PREFIX : pointsPrefix(vmId),
    )) {
      const parsed = parsePointKey(info.key);
      if (parsed === undefined) continue;
      try {
        points.push(await this.#readManifest(info.key, parsed.vmId, parsed.pointId));
      } catch (error) {
        if (!(error instanceof RepositoryError)) throw error;
        invalid.push({ key: info.key, error });
      }
    }
    points.sort(comparePoints);
    return { points, invalid };
  }

  /** Every restore point (of one VM or all), sorted; the first invalid manifest throws. */
  async listPoints(vmId?: string): Promise<PointManifest[]> {
    const { points, invalid } = await this.scanPoints(vmId);
    if (invalid[0] !== undefined) throw invalid[0].error;
    return points;
  }

  async #readManifest(key: string, vmId: string, pointId: string): Promise<PointManifest> {
    const manifest = parsePointManifest(key, await this.getReferenced(key));
    if (manifest.vmId !== vmId || manifest.pointId !== pointId) {
      throw new RepositoryError('REPO_MANIFEST_INVALID', `${key}: ids differ from its key`, {
        details: { key },
      });
    }
    return manifest;
  }

  async readPoint(vmId: string, pointId: string): Promise<PointManifest> {
    checkId('vmId', vmId);
    checkId('pointId', pointId);
    const key = pointKey(vmId, pointId);
    try {
      return await this.#readManifest(key, vmId, pointId);
    } catch (error) {
      if (error instanceof RepositoryError && error.code === 'REPO_OBJECT_MISSING') {
        throw new RepositoryError('REPO_POINT_NOT_FOUND', `no restore point ${vmId}/${pointId}`, {
          details: { key },
        });
      }
      throw error;
    }
  }

  loadChain(vmId: string, chainId: string): Promise<ChainState> {
    return ChainState.load(this.store, vmId, chainId);
  }

  async readIndex(ref: IndexRef): Promise<ChainIndex> {
    const index = decodeIndex(ref.key, await this.getReferenced(ref.key));
    const consistent =
      index.kind === ref.kind &&
      index.seq === ref.seq &&
      index.baseSeq === ref.baseSeq &&
      index.blockSizeBytes === this.config.blockSizeBytes &&
      index.hash === this.config.hash &&
      ref.key.includes(`/${index.chainId}/`);
    if (!consistent) {
      throw new RepositoryError(
        'REPO_INDEX_CORRUPT',
        `${ref.key}: header differs from its key or the repository`,
        {
          details: { key: ref.key },
        },
      );
    }
    return index;
  }

  /** The disk of a restore point, folded from its chain (the chain listing may be passed in). */
  async foldDisk(vmId: string, disk: DiskEntry, chain?: ChainState): Promise<FoldedDisk> {
    const state = chain ?? (await this.loadChain(vmId, disk.chainId));
    const indexes: ChainIndex[] = [];
    for (const ref of state.walk(disk.seq)) indexes.push(await this.readIndex(ref));
    return new FoldedDisk(indexes);
  }

  /**
   * Reads and checks one block object by hash (length, magic, codec and content hash), decoding in
   * `pool` (default: the pool when workers were configured explicitly), into `into` when the pool
   * can (the result may still be another buffer).
   */
  async readBlockObject(
    vmId: string,
    chainId: string,
    hash: Buffer,
    lengthBytes: number,
    pool: BlockWorkerPool | undefined = this.blockPoolFor(0),
    into?: Buffer,
  ): Promise<Buffer> {
    const key = blockKey(vmId, chainId, hash);
    if (pool === undefined) {
      const object = await this.getReferenced(key);
      return decodeBlockObject(key, object, hash, lengthBytes, this.config.hash);
    }
    const object = await this.getReferenced(key, {
      allocate: (objectBytes) => pool.objectBuffer(objectBytes),
    });
    const plain = await pool.decode(key, object, hash, lengthBytes, into);
    // An uncompressed block is returned inside its object: that one stays with the caller.
    if (plain.buffer !== object.buffer) pool.recycleObject(object);
    return plain;
  }

  /** The smallest possible size of a block object (used by structural checks). */
  static readonly minBlockObjectBytes = BLOCK_HEADER_BYTES;
}

export function findDisk(manifest: PointManifest, diskId: string): DiskEntry {
  const disk = manifest.disks.find((entry) => entry.diskId === diskId);
  if (disk === undefined) {
    throw new RepositoryError(
      'REPO_POINT_NOT_FOUND',
      `restore point ${manifest.vmId}/${manifest.pointId} has no disk ${diskId}`,
      { details: { vmId: manifest.vmId, pointId: manifest.pointId, diskId } },
    );
  }
  return disk;
}
