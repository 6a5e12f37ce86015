/**
 * XAPI delta transports on the same change set, in the same run, on the XAPI simulator (TLS
 * HTTPS, qemu-nbd with TLS behind the simulator's NBD relay, VHD streams from vmdelta's writer):
 * - CBT + NBD, 4 connections: VDI.list_changed_blocks, the changed 64 KiB blocks read over NBD;
 * - VHD BAT + NBD, 4 connections (CBT unusable): the changed 2 MiB VHD blocks read over NBD;
 * - plain VHD stream: `export_raw_vdi?format=vhd&base=` parsed as it arrives (the reference XO
 *   uses without NBD).
 * Each delta starts from the same committed key and is aborted, so all see the same changes.
 * Disk size BENCH_DISK_MIB (default 1024), scattered 64 KiB writes BENCH_WRITES (default 1600,
 * about 10 % of the disk as XenServer's CBT guide assumes). Simulator-side costs (the simulator's
 * VHD encoder compares whole images) are part of the stream figures, as XAPI's work would be.
 *
 *   node --import tsx bench/xapi-delta.ts
 */
import { randomBytes, randomInt } from 'node:crypto';
import { startSource } from '../test/hypervisor/xapi/source-fixture.ts';
import { requireTool } from '../test/harness/index.ts';
import type { BackupPoint, DiskReference, Hypervisor } from '../src/hypervisor/index.ts';

const MiB = 1024 * 1024;
const KiB = 1024;
const diskBytes = Number(process.env['BENCH_DISK_MIB'] ?? '1024') * MiB;
const writes = Number(process.env['BENCH_WRITES'] ?? '1600');
const BLOCK = 64 * KiB;

requireTool('qemu-nbd');

async function drainPoint(
  hypervisor: Hypervisor,
  vmUuid: string,
  previous: DiskReference,
  preferNbd: boolean,
): Promise<{ ms: number; bytes: number; blocks: number; how: string; point: BackupPoint }> {
  const point = await hypervisor.startBackupPoint(vmUuid, {
    scope: 'bench',
    blockSizeBytes: BLOCK,
    connections: 4,
    preferNbd,
    disks: [{ diskId: '0', previous }],
  });
  const disk = point.disks[0];
  if (disk === undefined) throw new Error('no disk');
  const started = performance.now();
  const opened = await disk.openSource();
  const openMs = performance.now() - started;
  let bytes = 0;
  for await (const block of opened.source.readBlocks()) bytes += block.data.length;
  await opened.source.close();
  const ms = performance.now() - started;
  const t = opened.transport;
  const how = `open ${openMs.toFixed(0)} ms, ${opened.source.kind}/${opened.changeTracker.kind}/${t.protocol === 'nbd' ? `nbd x${t.connections}` : t.protocol}`;
  return { ms, bytes, blocks: opened.source.blocks.count, how, point };
}

const s = await startSource({ settings: { release: { backoffMs: 10 } } });
// The fixture's VM has 8 MiB disks: add a bigger one for the bench.
const vm = await s.fx.sim.addVm({
  nameLabel: 'bench',
  disks: [{ nameLabel: 'bench disk', sizeBytes: diskBytes }],
});
try {
  const vdi = vm.vdiRefs[0] ?? '';
  for (let offset = 0; offset < diskBytes / 2; offset += 16 * MiB) {
    await s.fx.sim.writeToVdi(vdi, offset, randomBytes(16 * MiB));
  }
  const key = await s.hypervisor.startBackupPoint(vm.vmUuid, {
    scope: 'bench',
    blockSizeBytes: BLOCK,
    connections: 4,
  });
  const keyDisk = key.disks[0];
  if (keyDisk === undefined) throw new Error('no disk');
  const keySource = await keyDisk.openSource();
  let keyBytes = 0;
  for await (const block of keySource.source.readBlocks()) keyBytes += block.data.length;
  await keySource.source.close();
  await key.commit();
  console.log(`key: ${(keyBytes / MiB).toFixed(0)} MiB read`);
  const base = keyDisk.reference;
  for (let i = 0; i < writes; i += 1) {
    await s.fx.sim.writeToVdi(vdi, randomInt(0, diskBytes / BLOCK) * BLOCK, randomBytes(BLOCK));
  }
  const rows: [string, number, number, number, string][] = [];
  const cbt = await drainPoint(s.hypervisor, vm.vmUuid, base, true);
  await cbt.point.abort();
  rows.push(['CBT + NBD (4 connections)', cbt.ms, cbt.bytes, cbt.blocks, cbt.how]);
  const stream = await drainPoint(s.hypervisor, vm.vmUuid, base, false);
  await stream.point.abort();
  rows.push(['VHD stream (base=)', stream.ms, stream.bytes, stream.blocks, stream.how]);
  s.fx.sim.breakCbt(vdi);
  const bat = await drainPoint(s.hypervisor, vm.vmUuid, base, true);
  await bat.point.abort();
  rows.push(['VHD BAT + NBD (4 connections)', bat.ms, bat.bytes, bat.blocks, bat.how]);

  console.log(
    `disk ${diskBytes / MiB} MiB, ${writes} scattered 64 KiB writes (${((writes * BLOCK * 100) / diskBytes).toFixed(1)} % of the disk)`,
  );
  for (const [name, ms, bytes, blocks, how] of rows) {
    console.log(
      `${name.padEnd(32)} ${ms.toFixed(0).padStart(7)} ms  ${(bytes / MiB).toFixed(1).padStart(8)} MiB read  ${String(blocks).padStart(6)} blocks  ${(bytes / MiB / (ms / 1000)).toFixed(0).padStart(5)} MiB/s  ${how}`,
    );
  }
  console.log(
    `time ratio VHD stream / CBT+NBD: ${(stream.ms / cbt.ms).toFixed(2)}x; bytes ratio: ${(stream.bytes / cbt.bytes).toFixed(2)}x`,
  );
  console.log(`time ratio VHD BAT+NBD / CBT+NBD: ${(bat.ms / cbt.ms).toFixed(2)}x`);
} finally {
  await s.close();
}
