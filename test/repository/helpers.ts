/**
 * Shared helpers of the repository tests. Every suite takes a store factory as a parameter, so the
 * same tests run on every ObjectStore (memory here; local and S3 factories are added to
 * `storeFactories` as those stores land).
 */
import {
  blockCountFor,
  blockLengthBytes,
  MemoryDisk,
  type DiskSource,
} from '../../src/disk/index.ts';
import { LocalObjectStore, MemoryObjectStore, type ObjectStore } from '../../src/storage/index.ts';
import { makeTempDir } from '../harness/index.ts';

export interface StoreFactory {
  readonly name: string;
  /** Share of the property-test runs this store can afford (memory 1; slower stores less). */
  readonly runsScale: number;
  /** A fresh, empty store; `nowMs` drives object modification times where the store allows it. */
  create(options?: {
    nowMs?: () => number;
  }): Promise<{ store: ObjectStore; cleanup: () => Promise<void> }>;
}

export const memoryStoreFactory: StoreFactory = {
  name: 'memory',
  runsScale: 1,
  create: async (options = {}) => ({
    store: new MemoryObjectStore(options.nowMs === undefined ? {} : { nowMs: options.nowMs }),
    cleanup: async () => undefined,
  }),
};

/** A local folder store in a fresh temporary folder (fsync off: these tests are not about power loss). */
export const localStoreFactory: StoreFactory = {
  name: 'local',
  runsScale: 0.2,
  create: async () => {
    const dir = await makeTempDir('vmdelta-repo-');
    return {
      store: new LocalObjectStore(dir.path, { durable: false }),
      cleanup: () => dir.remove(),
    };
  },
};

/**
 * The stores every suite runs on. A test file for another store (S3) sets
 * `globalThis.vmdeltaRepositoryStoreFactories` before importing the suites dynamically.
 */
export const storeFactories: readonly StoreFactory[] = (
  globalThis as { vmdeltaRepositoryStoreFactories?: readonly StoreFactory[] }
).vmdeltaRepositoryStoreFactories ?? [memoryStoreFactory, localStoreFactory];

export function runsFor(factory: StoreFactory, memoryRuns: number): number {
  return Math.max(3, Math.round(memoryRuns * factory.runsScale));
}

function blockOf(image: Buffer, index: number, blockSizeBytes: number): Buffer {
  const start = index * blockSizeBytes;
  return Buffer.from(
    image.subarray(start, start + blockLengthBytes(index, image.length, blockSizeBytes)),
  );
}

/** A full source over an image: every block present (zero ones too, as a raw file would). */
export function fullSource(image: Buffer, blockSizeBytes: number): DiskSource {
  const data = new Map<number, Buffer>();
  for (let index = 0; index < blockCountFor(image.length, blockSizeBytes); index += 1) {
    data.set(index, blockOf(image, index, blockSizeBytes));
  }
  return new MemoryDisk({ sizeBytes: image.length, blockSizeBytes, data });
}

/** A delta source: only `changed` blocks of the image. */
export function deltaSource(
  image: Buffer,
  blockSizeBytes: number,
  changed: Iterable<number>,
): DiskSource {
  const data = new Map<number, Buffer>();
  for (const index of changed) data.set(index, blockOf(image, index, blockSizeBytes));
  return new MemoryDisk({ sizeBytes: image.length, blockSizeBytes, kind: 'delta', data });
}

/** Reads a full source into one image (holes are zeros); checks ascending order and lengths. */
export async function readImage(source: DiskSource): Promise<Buffer> {
  const image = Buffer.alloc(source.sizeBytes);
  let previous = -1;
  for await (const block of source.readBlocks()) {
    if (block.index <= previous) throw new Error(`block ${block.index} out of order`);
    if (!source.blocks.has(block.index)) throw new Error(`block ${block.index} not announced`);
    if (
      block.data.length !== blockLengthBytes(block.index, source.sizeBytes, source.blockSizeBytes)
    ) {
      throw new Error(`block ${block.index} has a wrong length`);
    }
    previous = block.index;
    block.data.copy(image, block.index * source.blockSizeBytes);
  }
  return image;
}
