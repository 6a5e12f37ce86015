/**
 * XAPI-simulator side: the `vhdEncoder` hook backed by vmdelta's own VHD writer, so that
 * `export_raw_vdi?format=vhd[&base=]` serves real VHD streams. A full export is a dynamic VHD of
 * the image's non-zero 2 MiB blocks; with `base=` it is a differencing VHD of the 2 MiB blocks
 * whose content differs from the base image (XAPI diffs the VHD chains instead, which can only
 * list more blocks: docs/xapi.md).
 */
import { randomUUID } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { BlockSet, blockLengthBytes, isZeroBlock } from '../../src/disk/index.ts';
import { writeVhd } from '../../src/vhd/index.ts';
import type { SimVhdEncoder } from './sim-context.ts';

const VHD_BLOCK_BYTES = 2 * 1024 * 1024;

async function readBlock(handle: FileHandle, index: number, sizeBytes: number): Promise<Buffer> {
  const lengthBytes = blockLengthBytes(index, sizeBytes, VHD_BLOCK_BYTES);
  const data = Buffer.alloc(lengthBytes);
  let done = 0;
  while (done < lengthBytes) {
    const { bytesRead } = await handle.read(
      data,
      done,
      lengthBytes - done,
      index * VHD_BLOCK_BYTES + done,
    );
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return data;
}

/** Counts the VHD blocks exported (tests compare transports on the same change set). */
export interface SimVhdEncoderStats {
  exports: number;
  blocks: number;
}

export function makeSimVhdEncoder(stats?: SimVhdEncoderStats): SimVhdEncoder {
  return async (input) => {
    const sizeBytes = input.virtualSizeBytes;
    const handle = await open(input.path, 'r');
    const base = input.basePath === undefined ? undefined : await open(input.basePath, 'r');
    try {
      const count = Math.ceil(sizeBytes / VHD_BLOCK_BYTES);
      const blocks = new BlockSet(count);
      for (let index = 0; index < count; index += 1) {
        const data = await readBlock(handle, index, sizeBytes);
        const changed =
          base === undefined
            ? !isZeroBlock(data)
            : !data.equals(await readBlock(base, index, sizeBytes));
        if (changed) blocks.add(index);
      }
      if (stats !== undefined) {
        stats.exports += 1;
        stats.blocks += blocks.count;
      }
      const source = {
        sizeBytes,
        blockSizeBytes: VHD_BLOCK_BYTES,
        kind: base === undefined ? ('full' as const) : ('delta' as const),
        blocks,
        async *readBlocks() {
          for (const index of blocks)
            yield { index, data: await readBlock(handle, index, sizeBytes) };
        },
      };
      const writer = writeVhd(
        source,
        base === undefined
          ? {}
          : { parent: { uuid: randomUUID(), timestamp: 0, fileName: 'base.vhd' } },
      );
      await base?.close();
      const stream = Readable.from(writer);
      stream.once('close', () => void handle.close().catch(() => undefined));
      return { stream, lengthBytes: writer.lengthBytes };
    } catch (error) {
      await handle.close();
      await base?.close();
      throw error;
    }
  };
}
