/**
 * TEMPORARY, test-only stand-in for `openNbdDisk` (src/disk/nbd-disk.ts, written in parallel and
 * not on this branch): the same contract (OpenNbdDisk) built on real tools. nbdinfo --map gives
 * the block list (base:allocation for a key, qemu:dirty-bitmap:<name> for a delta); nbdcopy
 * streams the export to stdout, from which the listed blocks are taken. One connection, reads
 * the whole export: fine for MiB-sized test disks, and an independent oracle for the exports.
 * Replace with the real openNbdDisk when the NBD client is merged.
 */
import { spawn } from 'node:child_process';
import { BlockSet, blockCountFor, blockLengthBytes, type Block } from '../../src/disk/index.ts';
import type { NbdDisk, OpenNbdDisk } from '../../src/hypervisor/index.ts';
import { requireTool, run } from '../harness/index.ts';

export interface Extent {
  readonly offset: number;
  readonly length: number;
  readonly type: number;
}

/** TLS for the tools: the client certificate directory (libnbd's tls-certificates). */
export interface ToolsTls {
  readonly certificatesDir: string;
}

export function toolsUri(uri: string, tls: ToolsTls | undefined): string {
  if (tls === undefined) return uri;
  const dir = tls.certificatesDir;
  return `${uri}${uri.includes('?') ? '&' : '?'}tls-certificates=${dir}`;
}

export async function nbdMap(uri: string, context: string): Promise<Extent[]> {
  const text = await run(requireTool('nbdinfo'), ['--json', `--map=${context}`, uri]);
  return JSON.parse(text) as Extent[];
}

export const openDiskWithNbdTools: OpenNbdDisk<ToolsTls> = async (options) => {
  const uri = toolsUri(options.uri, options.tls);
  const info = JSON.parse(await run(requireTool('nbdinfo'), ['--json', uri])) as {
    exports: { 'export-size': number; can_multi_conn?: boolean }[];
  };
  const exportSizeBytes = info.exports[0]?.['export-size'] ?? 0;
  const blockSizeBytes = options.blockSizeBytes;
  const blocks = new BlockSet(blockCountFor(exportSizeBytes, blockSizeBytes));
  const full = options.mode.kind === 'full';
  const context = full ? 'base:allocation' : `qemu:dirty-bitmap:${options.mode.dirtyBitmap}`;
  for (const extent of await nbdMap(uri, context)) {
    // Key: every range not known to read as zeros. Delta: the dirty ranges.
    const wanted = full ? (extent.type & 2) === 0 : (extent.type & 1) === 1;
    if (wanted) blocks.addByteRange(extent.offset, extent.length, blockSizeBytes);
  }
  let closed = false;
  const disk: NbdDisk = {
    sizeBytes: exportSizeBytes,
    blockSizeBytes,
    kind: full ? 'full' : 'delta',
    blocks,
    transport: {
      protocol: 'nbd',
      connections: 1,
      tls: options.tls !== undefined,
      uri: options.uri,
      exportSizeBytes,
      multiConn: info.exports[0]?.can_multi_conn ?? false,
    },
    readBlocks: () => readListedBlocks(uri, exportSizeBytes, blockSizeBytes, blocks, () => closed),
    close: async () => {
      closed = true;
    },
  };
  return disk;
};

async function* readListedBlocks(
  uri: string,
  sizeBytes: number,
  blockSizeBytes: number,
  blocks: BlockSet,
  isClosed: () => boolean,
): AsyncGenerator<Block> {
  if (blocks.count === 0) return;
  const child = spawn(requireTool('nbdcopy'), [uri, '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
  let position = 0;
  let index = 0;
  let current: Buffer | undefined;
  let filled = 0;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let at = 0;
      while (at < chunk.length) {
        const length = blockLengthBytes(index, sizeBytes, blockSizeBytes);
        const take = Math.min(length - filled, chunk.length - at);
        if (blocks.has(index)) {
          current ??= Buffer.allocUnsafe(length);
          chunk.copy(current, filled, at, at + take);
        }
        filled += take;
        at += take;
        position += take;
        if (filled === length) {
          if (current !== undefined) yield { index, data: current };
          current = undefined;
          filled = 0;
          index += 1;
        }
      }
      if (isClosed()) break;
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
  const code = await exited;
  if (position !== sizeBytes && !isClosed()) {
    throw new Error(`nbdcopy ${uri} stopped at ${position}/${sizeBytes} (exit ${code}): ${stderr}`);
  }
}
