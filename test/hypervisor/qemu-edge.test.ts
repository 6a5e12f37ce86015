// Discovery edge cases on a real qemu-storage-daemon: each situation that makes a delta unsafe
// yields a key backup with its reason, and TLS over TCP for the point-in-time exports.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { KiB, MiB, isVmdeltaError } from '../../src/core/index.ts';
import { QemuHypervisor, type DiskReference, type PointDisk } from '../../src/hypervisor/index.ts';
import {
  createImage,
  freePort,
  makePki,
  makeTempDir,
  qemuIo,
  startQsd,
  stopPid,
  type QsdInstance,
} from '../harness/index.ts';
import { readPointDisk } from './contract.ts';
import { openDiskWithNbdTools, type ToolsTls } from './nbd-tools-disk.ts';
import { makeQemuSubject } from './qemu-subject.ts';

const scope = 'edge';
const blockSizeBytes = 64 * KiB;

/** The only disk of a point. */
function only(point: { disks: readonly PointDisk[] }): PointDisk {
  const [disk] = point.disks;
  if (disk === undefined || point.disks.length !== 1) throw new Error('expected one disk');
  return disk;
}

function delta(previous: DiskReference | undefined) {
  if (previous === undefined) throw new Error('no reference');
  return { scope, blockSizeBytes, disks: [{ diskId: previous.diskId, previous }] };
}

test('bitmap removed by someone, disk resized, disk replaced, new disk: keys with reasons', async () => {
  const subject = await makeQemuSubject({ diskCount: 2, diskSizeBytes: 8 * MiB });
  const q = subject.inspector;
  try {
    const hv = subject.hypervisor;
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes });
    await p1.commit();
    const [r0, r1] = p1.disks.map((d) => d.reference) as [DiskReference, DiskReference];

    await q.execute('block-dirty-bitmap-remove', { node: 'disk0', name: r0.token });
    const missing = await hv.startBackupPoint('vm1', delta(r0));
    assert.equal(only(missing).plannedFullReason?.code, 'BITMAP_MISSING');
    await missing.abort();

    // The live export does not share 'resize': drop it (the guest stand-in is done with disk1).
    await deleteExportAndWait(subject.inspector, 'live-disk1');
    await q.execute('block_resize', { 'node-name': 'disk1', size: 12 * MiB });
    const resized = await hv.startBackupPoint('vm1', delta(r1));
    assert.equal(only(resized).plannedFullReason?.code, 'DISK_RESIZED');
    assert.equal(only(resized).disk.sizeBytes, 12 * MiB);
    const read = await readPointDisk(only(resized));
    assert.equal(read.kind, 'full');
    await resized.commit();
    const r1b = only(resized).reference;

    // Replace disk1 by another image under the same node name.
    const other = join(subject.tmp.path, 'other.qcow2');
    await createImage(other, 'qcow2', 12 * MiB);
    await q.execute('blockdev-del', { 'node-name': 'disk1' });
    await q.execute('blockdev-del', { 'node-name': 'file1' });
    await q.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': 'disk1',
      file: { driver: 'file', filename: other },
    });
    const replaced = await hv.startBackupPoint('vm1', delta(r1b));
    assert.equal(only(replaced).plannedFullReason?.code, 'DISK_REPLACED');
    assert.equal(only(replaced).disk.identity, other);
    await replaced.abort();

    // A new disk shows up in the listing and is a key with NO_PREVIOUS_REFERENCE.
    const third = join(subject.tmp.path, 'third.qcow2');
    await createImage(third, 'qcow2', 4 * MiB);
    await q.execute('blockdev-add', {
      driver: 'qcow2',
      'node-name': 'disk9',
      file: { driver: 'file', filename: third },
    });
    const machine = await hv.getMachine('vm1');
    assert.deepEqual(
      machine.disks.map((d) => d.id),
      ['disk0', 'disk1', 'disk9'],
    );
    const all = await hv.startBackupPoint('vm1', {
      scope,
      blockSizeBytes,
      disks: [{ diskId: 'disk9' }],
    });
    assert.equal(only(all).plannedFullReason?.code, 'NO_PREVIOUS_REFERENCE');
    await all.commit();
    assert.deepEqual(await subject.leftovers(scope), []);
  } finally {
    await subject.close();
  }
});

async function deleteExportAndWait(
  client: { execute(c: string, a?: object): Promise<unknown> },
  id: string,
) {
  await client.execute('block-export-del', { id });
  for (let i = 0; i < 100; i += 1) {
    const exports = (await client.execute('query-block-exports')) as { id: string }[];
    if (!exports.some((e) => e.id === id)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`export ${id} still there`);
}

async function qsdOn(dir: string, image: string): Promise<QsdInstance> {
  return startQsd({
    dir,
    args: [
      '--blockdev',
      `driver=file,node-name=file0,filename=${image}`,
      '--blockdev',
      `driver=qcow2,node-name=disk0,file=file0`,
    ],
  });
}

function hypervisorOn(qsd: QsdInstance, scratchDir: string): QemuHypervisor<ToolsTls> {
  return new QemuHypervisor({
    machines: [{ id: 'vm1', qmp: { socketPath: qsd.qmpSocketPath } }],
    scratchDir,
    openDisk: openDiskWithNbdTools,
  });
}

test('QEMU killed: a bitmap never saved is missing, a saved one in use is inconsistent', async () => {
  const tmp = await makeTempDir('vmd-k-');
  const image = join(tmp.path, 'vm.qcow2');
  const scratch = join(tmp.path, 's');
  await createImage(image, 'qcow2', 8 * MiB);
  const daemons: QsdInstance[] = [];
  try {
    // 1. Bitmap added, then QEMU dies before closing the image: the bitmap was never written.
    let qsd = await qsdOn(tmp.path, image);
    daemons.push(qsd);
    let hv = hypervisorOn(qsd, scratch);
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes });
    await p1.commit();
    await hv.close();
    process.kill(qsd.pid, 'SIGKILL');
    await stopPid(qsd.pid);
    qsd = await qsdOn(tmp.path, image);
    daemons.push(qsd);
    hv = hypervisorOn(qsd, scratch);
    const p2 = await hv.startBackupPoint('vm1', delta(only(p1).reference));
    assert.equal(only(p2).plannedFullReason?.code, 'BITMAP_MISSING');
    await p2.commit();
    // 2. Clean stop (bitmap saved), restart, then a kill while the image is open: inconsistent.
    await hv.close();
    await qsd.stop();
    qsd = await qsdOn(tmp.path, image);
    daemons.push(qsd);
    hv = hypervisorOn(qsd, scratch);
    assert.equal((await hv.getMachine('vm1')).disks.length, 1);
    await hv.close();
    process.kill(qsd.pid, 'SIGKILL');
    await stopPid(qsd.pid);
    qsd = await qsdOn(tmp.path, image);
    daemons.push(qsd);
    hv = hypervisorOn(qsd, scratch);
    const p3 = await hv.startBackupPoint('vm1', delta(only(p2).reference));
    assert.equal(only(p3).plannedFullReason?.code, 'BITMAP_INCONSISTENT');
    await p3.commit();
    const p4 = await hv.startBackupPoint('vm1', delta(only(p3).reference));
    assert.equal(only(p4).plannedKind, 'delta', 'the inconsistent bitmap was replaced');
    await p4.commit();
    await hv.close();
  } finally {
    for (const daemon of daemons) await daemon.stop();
    await tmp.remove();
  }
});

test('point-in-time exports over TCP with TLS (client certificate required)', async () => {
  const tmp = await makeTempDir('vmd-t-');
  const image = join(tmp.path, 'vm.qcow2');
  await createImage(image, 'qcow2', 8 * MiB);
  await qemuIo(image, 'qcow2', ['write -P 0x5a 1M 128k']);
  const pki = await makePki(join(tmp.path, 'pki'));
  const qsd = await qsdOn(tmp.path, image);
  const port = await freePort();
  const hv = new QemuHypervisor({
    machines: [
      {
        id: 'vm1',
        qmp: { socketPath: qsd.qmpSocketPath },
        nbdServer: {
          transport: 'tcp',
          host: '127.0.0.1',
          port,
          tlsCredsDir: pki.serverDir,
          verifyPeer: true,
        },
      },
    ],
    scratchDir: join(tmp.path, 's'),
    openDisk: openDiskWithNbdTools,
    clientTls: { certificatesDir: pki.clientDir },
  });
  try {
    const point = await hv.startBackupPoint('vm1', { scope, blockSizeBytes });
    const opened = await only(point).openSource();
    const transport = opened.transport;
    if (transport.protocol !== 'nbd') throw new Error('expected NBD');
    assert.equal(transport.tls, true);
    assert.match(transport.uri, new RegExp(`^nbds://127\\.0\\.0\\.1:${port}/vmd-`));
    assert.deepEqual(opened.source.blocks.toArray(), [16, 17]);
    await opened.source.close();
    // Without a client certificate the server refuses.
    await assert.rejects(
      openDiskWithNbdTools({
        uri: transport.uri,
        blockSizeBytes,
        mode: { kind: 'full' },
      }),
    );
    await point.commit();
  } finally {
    await hv.close();
    await qsd.stop();
    await tmp.remove();
  }
});

test('QMP connection lost during a point: abort reconnects and loses nothing; QEMU gone: typed, retryable failure', async () => {
  const subject = await makeQemuSubject({ diskCount: 1, diskSizeBytes: 8 * MiB });
  try {
    const hv = subject.hypervisor;
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes });
    await p1.commit();
    await subject.write('disk0', MiB, 4 * KiB, 0x61);
    const p2 = await hv.startBackupPoint('vm1', delta(only(p1).reference));
    await hv.close(); // the connection the point was made on is gone
    await subject.write('disk0', 3 * MiB, 4 * KiB, 0x62);
    await p2.abort(); // on a new connection
    assert.deepEqual(await subject.leftovers(scope), []);
    const p3 = await hv.startBackupPoint('vm1', delta(only(p1).reference));
    assert.equal(only(p3).plannedKind, 'delta');
    const read = await readPointDisk(only(p3));
    assert.deepEqual(read.blocks, [16, 48]);
    await p3.commit();
    assert.equal((await subject.references(scope)).length, 1);

    const p4 = await hv.startBackupPoint('vm1', delta(only(p3).reference));
    await subject.inspector.close();
    process.kill(subject.qsd.pid, 'SIGKILL');
    await stopPid(subject.qsd.pid);
    await assert.rejects(
      p4.abort(),
      (e: unknown) => isVmdeltaError(e) && e.code === 'HYPERVISOR_TEARDOWN_FAILED' && e.retryable,
    );
    assert.equal(p4.state, 'aborted');
  } finally {
    await subject.close();
  }
});

test('a running raw disk gets a non-persistent bitmap: deltas while QEMU lives, a key after a restart', async () => {
  const tmp = await makeTempDir('vmd-raw-');
  const image = join(tmp.path, 'vm.raw');
  await createImage(image, 'raw', 8 * MiB);
  const rawArgs = [
    '--blockdev',
    `driver=file,node-name=file0,filename=${image}`,
    '--blockdev',
    'driver=raw,node-name=disk0,file=file0',
  ];
  let qsd = await startQsd({ dir: tmp.path, args: rawArgs });
  let hv = hypervisorOn(qsd, join(tmp.path, 's'));
  try {
    const info = await hv.getMachine('vm1');
    assert.equal(info.disks[0]?.format, 'raw');
    const p1 = await hv.startBackupPoint('vm1', { scope, blockSizeBytes });
    assert.equal(only(p1).reference.attributes?.['persistent'], 'false');
    await p1.commit();
    const p2 = await hv.startBackupPoint('vm1', delta(only(p1).reference));
    assert.equal(only(p2).plannedKind, 'delta');
    await p2.commit();
    await hv.close();
    await qsd.stop();
    qsd = await startQsd({ dir: tmp.path, args: rawArgs });
    hv = hypervisorOn(qsd, join(tmp.path, 's'));
    const p3 = await hv.startBackupPoint('vm1', delta(only(p2).reference));
    assert.equal(only(p3).plannedFullReason?.code, 'BITMAP_MISSING');
    await p3.commit();
  } finally {
    await hv.close();
    await qsd.stop();
    await tmp.remove();
  }
});

test('two scopes (jobs) back up the same machine at once without touching each other', async () => {
  const subject = await makeQemuSubject({ diskCount: 1, diskSizeBytes: 8 * MiB });
  try {
    const hv = subject.hypervisor;
    const a1 = await hv.startBackupPoint('vm1', { scope: 'job-a', blockSizeBytes });
    const b1 = await hv.startBackupPoint('vm1', { scope: 'job-b', blockSizeBytes });
    await subject.write('disk0', 0, 4 * KiB, 0x71);
    assert.equal(
      (await readPointDisk(only(a1))).blocks.length,
      0,
      'a fresh disk: nothing allocated',
    );
    await b1.commit();
    await a1.commit();
    assert.equal((await subject.references('job-a')).length, 1);
    assert.equal((await subject.references('job-b')).length, 1);
    await subject.write('disk0', MiB, 4 * KiB, 0x72);
    const a2 = await hv.startBackupPoint('vm1', {
      scope: 'job-a',
      blockSizeBytes,
      disks: [{ diskId: 'disk0', previous: only(a1).reference }],
    });
    assert.deepEqual((await readPointDisk(only(a2))).blocks, [0, 16]);
    await a2.commit();
    const b2 = await hv.startBackupPoint('vm1', {
      scope: 'job-b',
      blockSizeBytes,
      disks: [{ diskId: 'disk0', previous: only(b1).reference }],
    });
    assert.deepEqual((await readPointDisk(only(b2))).blocks, [0, 16]);
    await b2.commit();
    assert.deepEqual(await subject.leftovers(scope), []);
  } finally {
    await subject.close();
  }
});
