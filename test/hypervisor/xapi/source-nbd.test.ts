// NBD on the XAPI source: at most 16 connections per host across the source (fewer opened when
// the host is busy, a stream fallback with NBD_CONNECT_FAILED when none is left), the returned
// certificate must carry the announced subject, connections dropped mid-read are reopened and
// the data stays exact, and the export name never appears in errors or logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requireTool } from '../../harness/index.ts';
import { BlockSet } from '../../../src/disk/index.ts';
import {
  NbdHostLimiter,
  XapiError,
  getNbdInfo,
  openXapiNbdSource,
} from '../../../src/hypervisor/xapi/index.ts';
import { DISK_SIZES, KiB, MiB, at, readInto, startSource } from './source-fixture.ts';

const BLOCK = 64 * KiB;

test('NbdHostLimiter counts per host and frees on release', () => {
  const limiter = new NbdHostLimiter(2);
  assert.equal(limiter.tryAcquire('a'), true);
  assert.equal(limiter.tryAcquire('a'), true);
  assert.equal(limiter.tryAcquire('a'), false);
  assert.equal(limiter.tryAcquire('b'), true);
  limiter.release('a');
  assert.equal(limiter.inUse('a'), 1);
  assert.equal(limiter.tryAcquire('a'), true);
});

test('xapi NBD: host limit, certificate subject, dropped connections, secret export name', async () => {
  requireTool('qemu-nbd');
  const s = await startSource();
  try {
    await s.write(0, 0, 4 * MiB, 0x44);
    const expected = await s.image(0);
    const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
      scope: 'job1',
      blockSizeBytes: BLOCK,
      connections: 1,
      disks: [{ diskId: '0' }],
    });
    const session = s.hypervisor.session;
    const snapshotVdi = String(
      await session.call('VDI.get_by_uuid', [at(point.disks, 0).reference.token]),
    );
    const endpoints = await getNbdInfo(session, snapshotVdi);
    const entry = at(endpoints, 0);
    const secret = entry.exportName.reveal();
    const options = {
      sizeBytes: DISK_SIZES[0],
      blockSizeBytes: BLOCK,
      kind: 'full' as const,
      blocks: BlockSet.all(DISK_SIZES[0] / BLOCK),
    };

    // 15 connections already in use on the host: only one more is opened.
    const busy = new NbdHostLimiter();
    for (let i = 0; i < 15; i += 1) busy.tryAcquire(entry.address);
    const one = await openXapiNbdSource({ ...options, endpoints, connections: 4, limiter: busy });
    assert.equal(one.connections, 1);
    assert.equal(busy.inUse(entry.address), 16);
    await assert.rejects(
      openXapiNbdSource({ ...options, endpoints, connections: 1, limiter: busy }),
      { code: 'XAPI_NBD_CONNECT' },
    );
    await one.close();
    assert.equal(busy.inUse(entry.address), 15, 'closing releases the slot');

    // A certificate that does not carry the announced subject is refused before connecting.
    const error = await openXapiNbdSource({
      ...options,
      endpoints: [{ ...entry, subject: 'xcp-host-9.example' }],
      connections: 1,
      limiter: new NbdHostLimiter(),
    }).catch((e: unknown) => e);
    assert.ok(error instanceof XapiError);
    assert.equal(error.code, 'XAPI_NBD_CERT_NAME');

    // A wrong pin: the connection fails and the message holds no export name.
    const pinError = await openXapiNbdSource({
      ...options,
      endpoints: [{ ...entry, certSha256Fingerprint: 'AA:'.repeat(31) + 'AA' }],
      connections: 1,
      limiter: new NbdHostLimiter(),
    }).catch((e: unknown) => e);
    assert.ok(pinError instanceof XapiError);
    assert.equal(pinError.code, 'XAPI_NBD_CONNECT');
    assert.equal(JSON.stringify(pinError).includes(secret), false);
    assert.equal(pinError.message.includes(secret), false);

    // A connection cut during the read (second 2 MiB request) is reopened; the key is exact.
    s.fx.sim.faults.dropNbdAfterBytes = 3 * MiB;
    const image = Buffer.alloc(DISK_SIZES[0]);
    const read = await readInto(at(point.disks, 0), image);
    assert.equal(read.transport, 'nbd x1');
    assert.ok(image.equals(expected), 'exact after reconnections');
    s.fx.sim.faults.dropNbdAfterBytes = undefined;
    await point.commit();
    assert.equal(
      s.fx.logger.records.some((r) => JSON.stringify(r).includes(secret)),
      false,
      'export name never logged',
    );
  } finally {
    await s.close();
  }
});

test('xapi NBD: without an NBD network the stream is used (NBD_UNAVAILABLE); enableNbd turns it on', async () => {
  requireTool('qemu-nbd');
  const s = await startSource({ nbd: false });
  try {
    await s.write(1, MiB, MiB, 0x55);
    const expected = await s.image(1);
    const point = await s.hypervisor.startBackupPoint(s.vm.vmUuid, {
      scope: 'job1',
      blockSizeBytes: BLOCK,
      disks: [{ diskId: '1' }],
    });
    const image = Buffer.alloc(DISK_SIZES[1]);
    const read = await readInto(at(point.disks, 0), image);
    assert.deepEqual([read.transport, read.fallback], ['stream vhd', 'NBD_UNAVAILABLE']);
    assert.ok(image.equals(expected));
    await point.commit();

    const enabling = await s.reopen({ backupNetwork: 'Backup network', enableNbd: true });
    const next = await enabling.startBackupPoint(s.vm.vmUuid, {
      scope: 'job1',
      blockSizeBytes: BLOCK,
      disks: [{ diskId: '1', previous: at(point.disks, 0).reference }],
    });
    const delta = await readInto(at(next.disks, 0), image);
    assert.deepEqual([delta.kind, delta.transport, delta.fallback], ['delta', 'nbd x1', undefined]);
    assert.ok(image.equals(expected));
    await next.commit();
    const network = [...s.fx.sim.db.table('network').values()].find(
      (n) => n['name_label'] === 'Backup network',
    );
    assert.deepEqual(network?.['purpose'], ['nbd']);
  } finally {
    await s.close();
  }
});
