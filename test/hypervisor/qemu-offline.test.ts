// Stopped machines (image files): qcow2 through qemu-nbd -B with offline bitmap management, raw
// without a change tracker; and restores into new images and back into a stopped machine's disk,
// checked with qemu-img compare.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KiB, MiB, isVmdeltaError } from '../../src/core/index.ts';
import { MemoryDisk } from '../../src/disk/index.ts';
import {
  QemuHypervisor,
  type BackupPoint,
  type PointDisk,
  type QemuMachineConfig,
} from '../../src/hypervisor/index.ts';
import { createImage, makeTempDir, qemuIo, requireTool, run, toRaw } from '../harness/index.ts';
import { applyRead, expectedBlocks, readPointDisk } from './contract.ts';
import { openDiskWithNbdTools } from './nbd-tools-disk.ts';
import { runAndKill } from './qemu-subject.ts';
import { openSinkWithNbdTools } from './nbd-tools-sink.ts';

const scope = 'offline';
const blockSizeBytes = 64 * KiB;

function byId(point: BackupPoint, id: string): PointDisk {
  const disk = point.disks.find((d) => d.disk.id === id);
  if (disk === undefined) throw new Error(`no disk ${id}`);
  return disk;
}

async function bitmapsOf(image: string): Promise<string[]> {
  const info = JSON.parse(await run(requireTool('qemu-img'), ['info', '--output=json', image])) as {
    'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } };
  };
  return (info['format-specific']?.data?.bitmaps ?? []).map(
    (b) => `${b.name}${b.flags.includes('auto') ? '' : ':disabled'}`,
  );
}

async function compareImages(
  a: string,
  aFormat: string,
  b: string,
  bFormat: string,
): Promise<void> {
  await run(requireTool('qemu-img'), ['compare', '-f', aFormat, '-F', bFormat, a, b]);
}

test('stopped machine: qcow2 deltas through qemu-nbd -B, raw read in full (no change tracker), crash leftovers', async () => {
  const tmp = await makeTempDir('vmd-o-');
  const qcow = join(tmp.path, 'sys.qcow2');
  const raw = join(tmp.path, 'data.raw');
  const scratchDir = join(tmp.path, 's');
  await createImage(qcow, 'qcow2', 8 * MiB);
  await createImage(raw, 'raw', 4 * MiB);
  await qemuIo(qcow, 'qcow2', ['write -P 0x11 0 1M']);
  await qemuIo(raw, 'raw', ['write -P 0x22 1M 64k']);
  const machine: QemuMachineConfig = {
    id: 'stopped1',
    // qemu-system is not running: its QMP socket is absent, so the images are used.
    qmp: { socketPath: join(tmp.path, 'qemu-not-running.sock') },
    images: [
      { id: 'sys', path: qcow, format: 'qcow2' },
      { id: 'data', path: raw, format: 'raw' },
    ],
  };
  const hv = new QemuHypervisor({
    machines: [machine],
    scratchDir,
    openDisk: openDiskWithNbdTools,
  });
  try {
    const info = await hv.getMachine('stopped1');
    assert.equal(info.powerState, 'stopped');
    assert.deepEqual(
      info.disks.map((d) => [d.id, d.sizeBytes, d.changeTracker]),
      [
        ['sys', 8 * MiB, 'qemu-dirty-bitmap'],
        ['data', 4 * MiB, 'none'],
      ],
    );
    const p1 = await hv.startBackupPoint('stopped1', { scope, blockSizeBytes });
    const sysKey = await readPointDisk(byId(p1, 'sys'));
    assert.equal(sysKey.reason, 'NO_PREVIOUS_REFERENCE');
    assert.deepEqual(sysKey.blocks, expectedBlocks([[0, MiB]], 64 * KiB, blockSizeBytes));
    // The image is exported: the machine cannot start and write meanwhile (image lock).
    await assert.rejects(qemuIo(qcow, 'qcow2', ['write 0 4k']), /lock/);
    await p1.commit();
    const r1 = p1.disks.map((d) => d.reference);
    assert.deepEqual(await bitmapsOf(qcow), [r1[0]?.token]);
    const sysAt1 = join(tmp.path, 'sys-at-1.raw');
    await toRaw(qcow, 'qcow2', sysAt1);

    // The machine runs for a while.
    await qemuIo(qcow, 'qcow2', ['write -P 0x33 3M 4k', 'write -P 0x34 7M 100k']);
    await qemuIo(raw, 'raw', ['write -P 0x44 0 4k']);
    const p2 = await hv.startBackupPoint('stopped1', {
      scope,
      blockSizeBytes,
      disks: r1.map((previous) => ({ diskId: previous.diskId, previous })),
    });
    const sysDelta = await readPointDisk(byId(p2, 'sys'));
    assert.equal(sysDelta.kind, 'delta');
    assert.deepEqual(
      sysDelta.blocks,
      expectedBlocks(
        [
          [3 * MiB, 4 * KiB],
          [7 * MiB, 100 * KiB],
        ],
        64 * KiB,
        blockSizeBytes,
      ),
    );
    const dataFull = await readPointDisk(byId(p2, 'data'));
    assert.equal(dataFull.kind, 'full');
    assert.equal(dataFull.reason, 'NO_CHANGE_TRACKER');
    assert.ok(dataFull.blocks.includes(0) && dataFull.blocks.includes(16));
    await p2.abort();
    assert.deepEqual(await bitmapsOf(qcow), [r1[0]?.token], 'abort restores the reference');

    // A backup dies with its qemu-nbd running; the next start stops it and loses nothing.
    await hv.close();
    await runAndKill({
      machine,
      scratchDir,
      request: {
        scope,
        blockSizeBytes,
        disks: r1.map((previous) => ({ diskId: previous.diskId, previous })),
      },
    });
    assert.notDeepEqual(await readdir(join(scratchDir, 'stopped1')), []);
    const p3 = await hv.startBackupPoint('stopped1', {
      scope,
      blockSizeBytes,
      disks: r1.map((previous) => ({ diskId: previous.diskId, previous })),
    });
    const again = await readPointDisk(byId(p3, 'sys'));
    assert.deepEqual(again.blocks, sysDelta.blocks);
    const image = applyRead(await readFile(sysAt1), again, blockSizeBytes);
    const sysNow = join(tmp.path, 'sys-now.raw');
    await p3.commit();
    await toRaw(qcow, 'qcow2', sysNow);
    assert.ok(image.equals(await readFile(sysNow)));
    assert.deepEqual(await bitmapsOf(qcow), [byId(p3, 'sys').reference.token]);
    assert.deepEqual(
      await readdir(join(scratchDir, 'stopped1')),
      [],
      'no socket, pid file or process left',
    );
  } finally {
    await hv.close();
    await tmp.remove();
  }
});

test('restore a key into new qcow2 and raw images and back into a stopped machine, bit-exact', async () => {
  const tmp = await makeTempDir('vmd-r-');
  const qcow = join(tmp.path, 'vm.qcow2');
  await createImage(qcow, 'qcow2', 6 * MiB + 4 * KiB); // partial last block
  await qemuIo(qcow, 'qcow2', [
    'write -P 0x5a 0 100k',
    'write -P 0x6b 5M 1M',
    'write -P 0x7c 6M 4k',
  ]);
  const machine: QemuMachineConfig = {
    id: 'm',
    images: [{ id: 'd', path: qcow, format: 'qcow2' }],
  };
  const running: QemuMachineConfig = {
    id: 'live',
    qmp: { socketPath: join(tmp.path, 'none.sock') },
  };
  const hv = new QemuHypervisor({
    machines: [machine, running],
    scratchDir: join(tmp.path, 's'),
    openDisk: openDiskWithNbdTools,
  });
  try {
    const listed = await hv.listMachines();
    assert.deepEqual(
      listed.map((m) => [m.id, m.powerState, m.disks.length]),
      [
        ['m', 'stopped', 1],
        ['live', 'unknown', 0],
      ],
      'an unreachable QEMU is listed, state unknown',
    );
    const point = await hv.startBackupPoint('m', { scope, blockSizeBytes: 256 * KiB });
    const disk = point.disks[0] as PointDisk;
    for (const format of ['qcow2', 'raw'] as const) {
      const opened = await disk.openSource();
      const path = join(tmp.path, `restored.${format}`);
      const restored = await hv.restoreDisk(opened.source, { kind: 'image-file', path, format });
      assert.equal(restored.sizeBytes, 6 * MiB + 4 * KiB);
      assert.ok(restored.writtenBlocks > 0);
      await compareImages(path, format, qcow, 'qcow2');
      await assert.rejects(
        hv.restoreDisk(opened.source, { kind: 'image-file', path, format }),
        (e: unknown) => isVmdeltaError(e) && e.code === 'HYPERVISOR_TARGET_EXISTS',
      );
    }
    const opened = await disk.openSource();
    await assert.rejects(
      hv.restoreDisk(opened.source, { kind: 'machine-disk', machineId: 'live', diskId: 'x' }),
      (e: unknown) => isVmdeltaError(e) && e.code === 'HYPERVISOR_MACHINE_RUNNING',
    );
    await point.commit();
    const before = join(tmp.path, 'before.raw');
    await toRaw(qcow, 'qcow2', before);
    // The machine's disk gets damaged; the key restores it in place.
    await qemuIo(qcow, 'qcow2', ['write -P 0xee 0 2M']);
    const fresh = await hv.startBackupPoint('m', {
      scope,
      blockSizeBytes: 256 * KiB,
      disks: [{ diskId: 'd' }],
    });
    await fresh.abort();
    const restoredInPlace = await hv.restoreDisk(
      await new QemuHypervisor({
        machines: [
          {
            id: 'src',
            images: [{ id: 'd', path: join(tmp.path, 'restored.qcow2'), format: 'qcow2' }],
          },
        ],
        scratchDir: join(tmp.path, 's2'),
        openDisk: openDiskWithNbdTools,
      })
        .startBackupPoint('src', { scope, blockSizeBytes: 64 * KiB })
        .then(async (p) => {
          const source = (await (p.disks[0] as PointDisk).openSource()).source;
          const data = new Map<number, Buffer>();
          for await (const block of source.readBlocks()) data.set(block.index, block.data);
          await p.abort();
          return new MemoryDisk({ sizeBytes: source.sizeBytes, blockSizeBytes: 64 * KiB, data });
        }),
      { kind: 'machine-disk', machineId: 'm', diskId: 'd' },
    );
    assert.equal(restoredInPlace.location, qcow);
    await compareImages(before, 'raw', qcow, 'qcow2');
  } finally {
    await hv.close();
    await tmp.remove();
  }
});

test('restore through a writable qemu-nbd export: new qcow2, and in place keeping the bitmaps', async () => {
  const tmp = await makeTempDir('vmd-rn-');
  const qcow = join(tmp.path, 'vm.qcow2');
  await createImage(qcow, 'qcow2', 4 * MiB);
  await qemuIo(qcow, 'qcow2', ['write -P 0x5a 64k 100k', 'write -P 0x6b 3M 1M']);
  const hv = new QemuHypervisor({
    machines: [{ id: 'm', images: [{ id: 'd', path: qcow, format: 'qcow2' }] }],
    scratchDir: join(tmp.path, 's'),
    openDisk: openDiskWithNbdTools,
    openSink: openSinkWithNbdTools,
  });
  try {
    const point = await hv.startBackupPoint('m', { scope, blockSizeBytes });
    const before = join(tmp.path, 'before.raw');
    await toRaw(qcow, 'qcow2', before);
    const fresh = join(tmp.path, 'fresh.qcow2');
    const restored = await hv.restoreDisk(
      (await (point.disks[0] as PointDisk).openSource()).source,
      {
        kind: 'image-file',
        path: fresh,
        format: 'qcow2',
      },
    );
    assert.equal(restored.transport.protocol, 'nbd');
    await compareImages(fresh, 'qcow2', qcow, 'qcow2');
    await point.commit();
    const reference = (point.disks[0] as PointDisk).reference;
    // Damage the disk, then restore the key in place through NBD.
    await qemuIo(qcow, 'qcow2', ['write -P 0xee 0 2M']);
    const keySource = await new QemuHypervisor({
      machines: [{ id: 'copy', images: [{ id: 'd', path: fresh, format: 'qcow2' }] }],
      scratchDir: join(tmp.path, 's2'),
      openDisk: openDiskWithNbdTools,
    })
      .startBackupPoint('copy', { scope: 'copy', blockSizeBytes })
      .then(async (p) => {
        const source = (await (p.disks[0] as PointDisk).openSource()).source;
        const data = new Map<number, Buffer>();
        for await (const block of source.readBlocks()) data.set(block.index, block.data);
        await p.abort();
        return new MemoryDisk({ sizeBytes: source.sizeBytes, blockSizeBytes, data });
      });
    await hv.restoreDisk(keySource, { kind: 'machine-disk', machineId: 'm', diskId: 'd' });
    await compareImages(before, 'raw', qcow, 'qcow2');
    assert.deepEqual(await bitmapsOf(qcow), [reference.token], 'the bitmap survived and recorded');
    const next = await hv.startBackupPoint('m', {
      scope,
      blockSizeBytes,
      disks: [{ diskId: 'd', previous: reference }],
    });
    assert.equal((next.disks[0] as PointDisk).plannedKind, 'delta');
    const read = await readPointDisk(next.disks[0] as PointDisk);
    assert.equal(read.blocks.length, 64, 'an in-place restore rewrites every block');
    await next.commit();
  } finally {
    await hv.close();
    await tmp.remove();
  }
});
