// QEMU backup points on a real qemu-storage-daemon, checked with tools nobody here wrote:
// qemu-io reads the point-in-time export, nbdinfo --map reads its frozen bitmap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KiB, MemoryLogger, MiB } from '../../src/core/index.ts';
import { QemuHypervisor, type PointDisk } from '../../src/hypervisor/index.ts';
import { requireTool, run } from '../harness/index.ts';
import { expectedBlocks, readPointDisk } from './contract.ts';
import { nbdMap } from './nbd-tools-disk.ts';
import { makeQemuSubject } from './qemu-subject.ts';
import { openDiskWithNbdTools } from './nbd-tools-disk.ts';

const scope = 'job1';

/** qemu-io on a read-only export. */
function readOnlyIo(uri: string, commands: readonly string[]): Promise<string> {
  return run(requireTool('qemu-io'), [
    '-r',
    '-f',
    'raw',
    ...commands.flatMap((c) => ['-c', c]),
    uri,
  ]);
}

test('the point-in-time export keeps old data under guest writes; its frozen bitmap is the writes rounded to 64 KiB', async () => {
  const subject = await makeQemuSubject({ diskCount: 1 });
  try {
    const hv = subject.hypervisor;
    await subject.write('disk0', 0, 4 * MiB, 0x11);
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes: 64 * KiB });
    await p1.commit();
    // Unaligned writes: 1 byte, 4 KiB across a granule boundary, 100 KiB.
    const writes: [number, number][] = [
      [100 * KiB, 1],
      [(3 * 64 - 2) * KiB, 4 * KiB],
      [10 * MiB, 100 * KiB],
    ];
    for (const [offset, length] of writes) await subject.write('disk0', offset, length, 0x22);
    const p2 = await hv.startBackupPoint('vm1', {
      scope,
      blockSizeBytes: 256 * KiB,
      disks: [{ diskId: 'disk0', previous: (p1.disks[0] as PointDisk).reference }],
    });
    const disk = p2.disks[0] as PointDisk;
    const opened = await disk.openSource();
    const uri = opened.transport.protocol === 'nbd' ? opened.transport.uri : '';
    await opened.source.close();
    // Guest writes after the point: the export must still read the old data.
    await subject.write('disk0', 0, 64 * KiB, 0x33);
    await subject.write('disk0', 100 * KiB, 1, 0x33);
    const ok = await readOnlyIo(uri, ['read -P 0x11 0 64k', 'read -P 0x22 100k 1']);
    assert.doesNotMatch(ok, /verification failed/);
    await assert.rejects(readOnlyIo(uri, ['read -P 0x33 0 64k']), (error: Error) =>
      String((error.cause as { stdout?: string }).stdout).includes('Pattern verification failed'),
    );
    const dirty = (await nbdMap(uri, `qemu:dirty-bitmap:${disk.previous?.token ?? ''}`))
      .filter((e) => e.type === 1)
      .map((e) => [e.offset, e.length]);
    assert.deepEqual(dirty, [
      [64 * KiB, 192 * KiB], // granules 1, 2, 3 (adjacent ranges are merged)
      [10 * MiB, 128 * KiB],
    ]);
    const read = await readPointDisk(disk);
    assert.deepEqual(read.blocks, expectedBlocks(writes, 64 * KiB, 256 * KiB));
    assert.deepEqual(read.blocks, [0, 40]);
    assert.equal(
      read.data
        .get(0)
        ?.subarray(0, 64 * KiB)
        .every((b) => b === 0x11),
      true,
    );
    await p2.commit();
    // The writes made during p2 are the next delta.
    const p3 = await hv.startBackupPoint('vm1', {
      scope,
      blockSizeBytes: 64 * KiB,
      disks: [{ diskId: 'disk0', previous: (p2.disks[0] as PointDisk).reference }],
    });
    assert.deepEqual((await readPointDisk(p3.disks[0] as PointDisk)).blocks, [0, 1]);
    await p3.commit();
  } finally {
    await subject.close();
  }
});

test('all disks of a machine are captured by one QMP transaction', async () => {
  const logger = new MemoryLogger();
  const subject = await makeQemuSubject({ diskCount: 3, diskSizeBytes: 4 * MiB });
  try {
    await subject.hypervisor.close();
    subject.hypervisor = new QemuHypervisor({
      machines: [
        {
          id: 'vm1',
          qmp: { socketPath: subject.qsd.qmpSocketPath },
          nbdServer: { transport: 'unix', socketPath: subject.nbdSocketPath },
        },
      ],
      scratchDir: subject.scratchDir,
      openDisk: openDiskWithNbdTools,
      logger,
    });
    const point = await subject.hypervisor.startBackupPoint('vm1', {
      scope,
      blockSizeBytes: 64 * KiB,
    });
    const commands = logger.records
      .filter((r) => r.message === 'qmp command')
      .map((r) => r.fields['command']);
    assert.equal(commands.filter((c) => c === 'transaction').length, 1);
    assert.equal(point.disks.length, 3);
    const jobs = (await subject.inspector.execute('query-jobs')) as { id: string }[];
    assert.equal(
      jobs.filter((j) => j.id.startsWith('vmd-')).length,
      3,
      'one fleecing job per disk',
    );
    assert.equal(new Set(point.disks.map((d) => d.reference.token)).size, 1, 'one point name');
    await point.commit();
    assert.deepEqual(await subject.leftovers(scope), []);
  } finally {
    await subject.close();
  }
});

test('a guest writing concurrently with the read of a key: nothing leaks, the next delta has it all', async () => {
  const subject = await makeQemuSubject({ diskCount: 1, diskSizeBytes: 16 * MiB });
  try {
    const hv = subject.hypervisor;
    await subject.write('disk0', 0, 8 * MiB, 0x11);
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes: 64 * KiB });
    // 300 writes of 4 KiB at pseudo-random offsets, by a separate qemu-io process, during the read.
    let seed = 12345;
    const writes: [number, number][] = [];
    for (let i = 0; i < 300; i += 1) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      writes.push([(seed % 4096) * 4 * KiB, 4 * KiB]);
    }
    const guest = run(requireTool('qemu-io'), [
      '-f',
      'raw',
      ...writes.flatMap(([offset, length]) => ['-c', `write -P 0xee ${offset} ${length}`]),
      subject.liveUri('disk0'),
    ]);
    const key = await readPointDisk(p1.disks[0] as PointDisk);
    await guest;
    assert.deepEqual(
      key.blocks,
      Array.from({ length: 128 }, (_, i) => i),
    );
    for (const data of key.data.values())
      assert.ok(
        data.every((b) => b === 0x11),
        'no guest write leaked',
      );
    await p1.commit();
    const p2 = await hv.startBackupPoint('vm1', {
      scope,
      blockSizeBytes: 64 * KiB,
      disks: [{ diskId: 'disk0', previous: (p1.disks[0] as PointDisk).reference }],
    });
    const delta = await readPointDisk(p2.disks[0] as PointDisk);
    assert.deepEqual(delta.blocks, expectedBlocks(writes, 64 * KiB, 64 * KiB));
    await p2.commit();
  } finally {
    await subject.close();
  }
});
