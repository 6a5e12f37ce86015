/**
 * TEMPORARY, test-only stand-in for `openNbdSink` (src/disk/nbd-sink.ts, not on this branch):
 * writes are collected in a sparse temporary file of the export's size, copied onto the export by
 * nbdcopy at close(). Same contract (OpenNbdSink). Replace with the real sink once merged.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NbdSink, OpenNbdSink } from '../../src/hypervisor/index.ts';
import { requireTool, run } from '../harness/index.ts';
import { toolsUri, type ToolsTls } from './nbd-tools-disk.ts';

export const openSinkWithNbdTools: OpenNbdSink<ToolsTls> = async (options) => {
  const uri = toolsUri(options.uri, options.tls);
  const info = JSON.parse(await run(requireTool('nbdinfo'), ['--json', uri])) as {
    exports: { 'export-size': number; can_multi_conn?: boolean; is_read_only?: boolean }[];
  };
  const exportSizeBytes = info.exports[0]?.['export-size'] ?? 0;
  if (info.exports[0]?.is_read_only === true) throw new Error(`${options.uri} is read-only`);
  const dir = await mkdtemp(join(tmpdir(), 'vmd-sink-'));
  const path = join(dir, 'data.raw');
  const file = await open(path, 'w+');
  await file.truncate(exportSizeBytes);
  const sink: NbdSink = {
    sizeBytes: exportSizeBytes,
    transport: {
      protocol: 'nbd',
      connections: 1,
      tls: options.tls !== undefined,
      uri: options.uri,
      exportSizeBytes,
      multiConn: info.exports[0]?.can_multi_conn ?? false,
    },
    writeBlock: async (index, data, blockSizeBytes) => {
      await file.write(data, 0, data.length, index * blockSizeBytes);
    },
    close: async () => {
      try {
        await file.close();
        await run(requireTool('nbdcopy'), [path, uri]);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  return sink;
};
