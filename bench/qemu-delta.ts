/**
 * Benchmark: QEMU fleecing exports, delta vs full, and our full read vs nbdcopy.
 *
 *   node --import tsx bench/qemu-delta.ts            (4 GiB; VMDELTA_BENCH_GIB=1 for a quick run)
 *
 * A qcow2 disk full of data is served by qemu-storage-daemon; a key point is committed, then 1 %
 * of its 64 KiB granules are written through a live export, and a delta point is taken.
 * 1. Delta read vs full read of the same point-in-time export (goal: ≤ 3 %).
 * 2. Full read through the fleecing export: our DiskSource vs `nbdcopy URI null:`.
 * The reader is src/disk/nbd-disk.ts `openNbdDisk` when present; otherwise the temporary
 * test adapter (nbdinfo + nbdcopy, which streams the WHOLE export even for a delta), in which case
 * the delta figure is also measured with qemu-io reading only the dirty extents, and said so.
 */
import { join } from 'node:path';
import { GiB, KiB, formatBytes, formatDurationMs, formatRate } from '../src/core/index.ts';
import { QemuHypervisor, type OpenNbdDisk, type PointDisk } from '../src/hypervisor/index.ts';
import {
  createImage,
  makeTempDir,
  qemuIo,
  requireTool,
  run,
  startQsd,
} from '../test/harness/index.ts';
import { nbdMap, openDiskWithNbdTools, type ToolsTls } from '../test/hypervisor/nbd-tools-disk.ts';

const sizeBytes = Number(process.env['VMDELTA_BENCH_GIB'] ?? '4') * GiB;
const granuleBytes = 64 * KiB;
const blockSizeBytes = 64 * KiB;

async function loadReader(): Promise<{ openDisk: OpenNbdDisk<ToolsTls>; real: boolean }> {
  const path = '../src/disk/nbd-disk.ts';
  try {
    const module = (await import(path)) as { openNbdDisk?: OpenNbdDisk<ToolsTls> };
    if (module.openNbdDisk !== undefined) return { openDisk: module.openNbdDisk, real: true };
  } catch {
    // not merged yet
  }
  return { openDisk: openDiskWithNbdTools, real: false };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

async function readAll(
  disk: PointDisk,
  openDisk: OpenNbdDisk<ToolsTls>,
  uriOverride?: string,
  fullBlockSizeBytes = blockSizeBytes,
): Promise<number> {
  let bytes = 0;
  if (uriOverride === undefined) {
    const opened = await disk.openSource({ connections: 4 });
    for await (const block of opened.source.readBlocks()) bytes += block.data.length;
    await opened.source.close();
    return bytes;
  }
  const source = await openDisk({
    uri: uriOverride,
    blockSizeBytes: fullBlockSizeBytes,
    mode: { kind: 'full' },
    connections: 4,
  });
  for await (const block of source.readBlocks()) bytes += block.data.length;
  await source.close();
  return bytes;
}

const { openDisk, real } = await loadReader();
const tmp = await makeTempDir('vmd-bench-');
const image = join(tmp.path, 'vm.qcow2');
const nbdSocket = join(tmp.path, 'nbd.sock');
console.log(
  `disk ${formatBytes(sizeBytes)}, granules ${formatBytes(granuleBytes)}, reader: ${real ? 'openNbdDisk' : 'TEMPORARY nbdinfo+nbdcopy adapter (openNbdDisk not merged)'}`,
);
await createImage(image, 'qcow2', sizeBytes);
// qemu-io writes at most 2 GiB per command: fill in 1 GiB steps (the last one may be shorter).
const fillCommands: string[] = [];
for (let offset = 0; offset < sizeBytes; offset += GiB) {
  fillCommands.push(`write -P 0x5a ${offset} ${Math.min(GiB, sizeBytes - offset)}`);
}
const fill = await timed(() => qemuIo(image, 'qcow2', fillCommands));
console.log(`filled with data in ${formatDurationMs(fill.ms)}`);
const qsd = await startQsd({
  dir: tmp.path,
  args: [
    '--blockdev',
    `driver=file,node-name=f0,filename=${image}`,
    '--blockdev',
    'driver=qcow2,node-name=disk0,file=f0',
    '--nbd-server',
    `addr.type=unix,addr.path=${nbdSocket}`,
    '--export',
    'type=nbd,id=live,node-name=disk0,name=live,writable=on',
  ],
});
const hv = new QemuHypervisor({
  machines: [
    {
      id: 'vm',
      qmp: { socketPath: qsd.qmpSocketPath },
      nbdServer: { transport: 'unix', socketPath: nbdSocket },
    },
  ],
  scratchDir: join(tmp.path, 's'),
  openDisk,
});
try {
  const p1 = await hv.startBackupPoint('vm', { scope: 'bench', blockSizeBytes });
  await p1.commit();
  const granules = sizeBytes / granuleBytes;
  const dirtyCount = Math.round(granules / 100);
  const chosen = new Set<number>();
  let seed = 42;
  while (chosen.size < dirtyCount) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    chosen.add(seed % granules);
  }
  await qemuIo(
    `nbd+unix:///live?socket=${nbdSocket}`,
    'raw',
    [...chosen].map((g) => `write -P 0xa5 ${g * granuleBytes} 4k`),
  );
  const p2 = await hv.startBackupPoint('vm', {
    scope: 'bench',
    blockSizeBytes,
    connections: 4,
    disks: [{ diskId: 'disk0', previous: (p1.disks[0] as PointDisk).reference }],
  });
  const disk = p2.disks[0] as PointDisk;
  const probe = await disk.openSource();
  const uri = probe.transport.protocol === 'nbd' ? probe.transport.uri : '';
  const base = probe.changeTracker.base ?? '';
  await probe.source.close();

  const delta = await timed(() => readAll(disk, openDisk));
  const full = await timed(() => readAll(disk, openDisk, uri));
  const full2M = await timed(() => readAll(disk, openDisk, uri, 2 * 1024 * KiB));
  const nbdcopy = await timed(() => run(requireTool('nbdcopy'), ['--connections=4', uri, 'null:']));
  // Reference delta read with QEMU's own client: only the dirty extents, one qemu-io process.
  const extents = (await nbdMap(uri, `qemu:dirty-bitmap:${base}`)).filter((e) => e.type === 1);
  const qemuIoDelta = await timed(() =>
    run(requireTool('qemu-io'), [
      '-r',
      '-f',
      'raw',
      ...extents.flatMap((e) => ['-c', `read ${e.offset} ${e.length}`]),
      uri,
    ]),
  );
  await p2.commit();

  const pct = (a: number, b: number): string => `${((100 * a) / b).toFixed(2)} %`;
  console.log(`dirty granules: ${dirtyCount} (${formatBytes(delta.value)} read as delta)`);
  console.log(
    `delta read (ours):      ${formatDurationMs(delta.ms)}  (${formatRate(delta.value, delta.ms)})`,
  );
  console.log(
    `full read (ours):       ${formatDurationMs(full.ms)}  (${formatRate(full.value, full.ms)})`,
  );
  console.log(
    `full read (ours, 2 MiB blocks): ${formatDurationMs(full2M.ms)}  (${formatRate(full2M.value, full2M.ms)})`,
  );
  console.log(
    `nbdcopy full (4 conn):  ${formatDurationMs(nbdcopy.ms)}  (${formatRate(sizeBytes, nbdcopy.ms)})`,
  );
  console.log(
    `qemu-io dirty extents:  ${formatDurationMs(qemuIoDelta.ms)}  (${extents.length} extents)`,
  );
  console.log(
    `ratio delta/full (ours):          ${pct(delta.ms, full.ms)}   goal <= 3 %${real ? '' : '  [adapter streams the whole export: not meaningful]'}`,
  );
  console.log(`ratio delta/full (qemu-io/nbdcopy): ${pct(qemuIoDelta.ms, nbdcopy.ms)}`);
  console.log(
    `ratio full ours/nbdcopy:          ${(full.ms / nbdcopy.ms).toFixed(2)}x (64 KiB blocks)`,
  );
  console.log(
    `ratio full ours/nbdcopy:          ${(full2M.ms / nbdcopy.ms).toFixed(2)}x (2 MiB blocks)`,
  );
} finally {
  await hv.close();
  await qsd.stop();
  await tmp.remove();
}
