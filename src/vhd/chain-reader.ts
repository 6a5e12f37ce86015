/**
 * Chain reader: a differencing VHD and its ancestors, read as one disk. A block is taken from the
 * newest layer that holds it; a partially present block (sector bitmap not full) is completed
 * sector by sector from older layers, and sectors no layer holds read as zeros. Layers smaller
 * than the child read as zeros past their own size.
 */
import { DiskType, VHD_SECTOR_BYTES } from './constants.ts';
import { VhdError } from './errors.ts';
import { isSectorPresent } from './sector-bitmap.ts';
import { openParent } from './parent-resolver.ts';
import { openVhdFile, type VhdReader } from './vhd-reader.ts';

export interface VhdChainLayer {
  readonly path: string;
  readonly reader: VhdReader;
}

export class VhdChain {
  /** Child (newest) first, the dynamic or fixed root last. */
  readonly layers: readonly VhdChainLayer[];

  constructor(layers: readonly VhdChainLayer[]) {
    this.layers = layers;
  }

  get tip(): VhdReader {
    const first = this.layers[0];
    if (first === undefined) throw new VhdError('VHD_UNSUPPORTED', 'empty chain');
    return first.reader;
  }
  get sizeBytes(): number {
    return this.tip.sizeBytes;
  }
  get blockSizeBytes(): number {
    return this.tip.blockSizeBytes;
  }
  get blockCount(): number {
    return this.tip.blockCount;
  }

  isAllocated(index: number): boolean {
    return index < this.blockCount && this.layers.some(({ reader }) => reader.isAllocated(index));
  }

  allocatedBlocks(): number[] {
    const indexes: number[] = [];
    for (let index = 0; index < this.blockCount; index += 1)
      if (this.isAllocated(index)) indexes.push(index);
    return indexes;
  }

  /**
   * Layers from `fromLayer` down, merged: the block's content (blockSizeBytes, owned by the caller)
   * or undefined when no layer holds it (zeros).
   */
  async readBlock(index: number, fromLayer = 0): Promise<Buffer | undefined> {
    const blockSizeBytes = this.blockSizeBytes;
    const sectorCount = blockSizeBytes / VHD_SECTOR_BYTES;
    let result: Buffer | undefined;
    let needed: Uint8Array | undefined;
    let neededCount = sectorCount;
    for (const { reader } of this.layers.slice(fromLayer)) {
      const block = await reader.readBlock(index);
      if (block === undefined) continue;
      if (result === undefined && block.sectorBitmap === undefined) return block.data;
      if (result === undefined || needed === undefined) {
        result = block.data;
        needed = new Uint8Array(sectorCount);
        const bitmap = block.sectorBitmap ?? Buffer.alloc(0);
        for (let sector = 0; sector < sectorCount; sector += 1)
          if (!isSectorPresent(bitmap, sector)) needed[sector] = 1;
          else neededCount -= 1;
      } else {
        for (let sector = 0; sector < sectorCount; sector += 1) {
          if (needed[sector] !== 1) continue;
          if (block.sectorBitmap !== undefined && !isSectorPresent(block.sectorBitmap, sector))
            continue;
          block.data.copy(
            result,
            sector * VHD_SECTOR_BYTES,
            sector * VHD_SECTOR_BYTES,
            (sector + 1) * VHD_SECTOR_BYTES,
          );
          needed[sector] = 0;
          neededCount -= 1;
        }
      }
      if (neededCount === 0) break;
    }
    return result;
  }

  async close(): Promise<void> {
    for (const { reader } of this.layers) await reader.close().catch(() => undefined);
  }
}

/** Opens a VHD and, while it is differencing, its parents (at most `maxDepth` layers). */
export async function openVhdChain(
  path: string,
  options: { maxDepth?: number } = {},
): Promise<VhdChain> {
  const maxDepth = options.maxDepth ?? 256;
  const layers: VhdChainLayer[] = [{ path, reader: await openVhdFile(path) }];
  try {
    for (;;) {
      const last = layers[layers.length - 1];
      if (last === undefined || last.reader.diskType !== DiskType.differencing) break;
      if (layers.length >= maxDepth)
        throw new VhdError(
          'VHD_UNSUPPORTED',
          `chain deeper than ${maxDepth} layers at ${last.path}`,
          { details: { field: 'header.parentUuid' } },
        );
      const parent = await openParent(last.path, last.reader);
      layers.push(parent);
      if (parent.reader.blockSizeBytes !== last.reader.blockSizeBytes)
        throw new VhdError(
          'VHD_PARENT_MISMATCH',
          `${parent.path} has ${parent.reader.blockSizeBytes}-byte blocks, its child ${last.path} ${last.reader.blockSizeBytes}`,
          {
            details: { field: 'header.blockSize' },
          },
        );
    }
    return new VhdChain(layers);
  } catch (error) {
    for (const { reader } of layers) await reader.close().catch(() => undefined);
    throw error;
  }
}
