/**
 * A raw image file as a full DiskSource for `vhd convert`: one pass finds the non-zero 2 MiB
 * blocks (the VHD writer needs the block set, hence the length, before the first byte), a second
 * pass yields them. A size that is not a sector multiple is padded with zeros to one.
 */
import { open, type FileHandle } from 'node:fs/promises';
import {
  BlockSet,
  blockLengthBytes,
  isZeroBlock,
  type Block,
  type DiskSource,
} from '../../disk/index.ts';
import { SECTOR_BYTES, ceilDiv, throwIfAborted } from '../../core/index.ts';

async function readBlockAt(
  handle: FileHandle,
  fileBytes: number,
  offsetBytes: number,
  lengthBytes: number,
): Promise<Buffer> {
  const buffer = Buffer.alloc(lengthBytes);
  const wanted = Math.max(0, Math.min(lengthBytes, fileBytes - offsetBytes));
  let filled = 0;
  while (filled < wanted) {
    const { bytesRead } = await handle.read(buffer, filled, wanted - filled, offsetBytes + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer;
}

export async function openRawFileSource(
  path: string,
  blockSizeBytes = 2 * 1024 * 1024,
): Promise<DiskSource> {
  const handle = await open(path, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    const sizeBytes = ceilDiv(fileBytes, SECTOR_BYTES) * SECTOR_BYTES;
    const blockCount = ceilDiv(sizeBytes, blockSizeBytes);
    const blocks = new BlockSet(blockCount);
    for (let index = 0; index < blockCount; index += 1) {
      const data = await readBlockAt(
        handle,
        fileBytes,
        index * blockSizeBytes,
        blockLengthBytes(index, sizeBytes, blockSizeBytes),
      );
      if (!isZeroBlock(data)) blocks.add(index);
    }
    return {
      sizeBytes,
      blockSizeBytes,
      kind: 'full',
      blocks,
      readBlocks: async function* (options = {}): AsyncGenerator<Block> {
        for (const index of blocks) {
          throwIfAborted(options.signal);
          const lengthBytes = blockLengthBytes(index, sizeBytes, blockSizeBytes);
          yield {
            index,
            data: await readBlockAt(handle, fileBytes, index * blockSizeBytes, lengthBytes),
          };
        }
      },
      close: () => handle.close(),
    };
  } catch (error) {
    await handle.close();
    throw error;
  }
}
