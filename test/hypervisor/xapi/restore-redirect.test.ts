// PUT /import_raw_vdi answered by a 302 (the pool sends the import to another host): the VHD body
// already started cannot be replayed, so the restore re-opens its source (reopenSource) and sends
// it again to the new host, bit-exact; without a way to re-open, a typed error and no VDI left.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryDisk, type DiskSource } from '../../../src/disk/index.ts';
import { XapiHypervisor } from '../../../src/hypervisor/xapi/index.ts';
import { startSim } from './sim-fixture.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

/** A restore point stand-in that can be read once, like a repository or NBD source. */
function readOnce(data: ReadonlyMap<number, Buffer>, opened: { count: number }): DiskSource {
  opened.count += 1;
  const disk = new MemoryDisk({ sizeBytes: 4 * MiB, blockSizeBytes: 64 * KiB, data });
  let reads = 0;
  return {
    sizeBytes: disk.sizeBytes,
    blockSizeBytes: disk.blockSizeBytes,
    kind: disk.kind,
    blocks: disk.blocks,
    readBlocks: () => {
      reads += 1;
      if (reads > 1) throw new Error('this source can be read once');
      return disk.readBlocks();
    },
    close: () => disk.close(),
  };
}

test('a 302 on the VHD import re-opens the source and restores bit-exact on the other host', async () => {
  const fx = await startSim();
  try {
    fx.sim.faults.asyncDelayMs = 1;
    const hypervisor = new XapiHypervisor(await fx.connect());
    const sr = String(fx.sim.db.get('SR', fx.sim.db.srRefs[0])['uuid']);
    const data = new Map<number, Buffer>([
      [0, randomBytes(64 * KiB)],
      [17, randomBytes(64 * KiB)],
      [63, randomBytes(64 * KiB)],
    ]);
    const expected = Buffer.alloc(4 * MiB);
    for (const [index, block] of data) block.copy(expected, index * 64 * KiB);
    fx.sim.faults.redirectTransfers = true;

    const opened = { count: 0 };
    const restored = await hypervisor.restoreDisk(
      readOnce(data, opened),
      { kind: 'new-disk', storageId: sr, label: 'redirected' },
      { reopenSource: () => Promise.resolve(readOnce(data, opened)) },
    );
    assert.equal(opened.count, 2, 'the source was opened again once for the second host');
    assert.deepEqual(
      { ...restored.transport, url: '' },
      { protocol: 'stream', format: 'vhd', tls: false, url: '' },
      'imported as a VHD stream',
    );
    assert.ok((await fx.sim.readVdi(restored.location)).equals(expected), 'bit-exact');
    assert.ok(
      fx.logger.records.some((r) => r.message.includes('redirected')),
      'the redirect is logged',
    );

    // Without reopenSource: a typed error, the new VDI destroyed, no task left.
    const vdis = fx.sim.db.table('VDI').size;
    await assert.rejects(
      hypervisor.restoreDisk(readOnce(data, opened), {
        kind: 'new-disk',
        storageId: sr,
        label: 'not replayable',
      }),
      { code: 'HYPERVISOR_INVALID_REQUEST' },
    );
    assert.equal(fx.sim.db.table('VDI').size, vdis, 'no VDI left behind');
    assert.deepEqual(await hypervisor.session.call('task.get_all'), []);

    // A redirect loop is bounded: XAPI_TOO_MANY_REDIRECTS, the VDI destroyed.
    fx.sim.faults.redirectTransfersForever = true;
    const loop = { count: 0 };
    await assert.rejects(
      hypervisor.restoreDisk(
        readOnce(data, loop),
        { kind: 'new-disk', storageId: sr, label: 'loop' },
        { reopenSource: () => Promise.resolve(readOnce(data, loop)) },
      ),
      { code: 'XAPI_TOO_MANY_REDIRECTS' },
    );
    assert.ok(
      loop.count >= 2 && loop.count <= 4,
      `bodies opened: ${loop.count}, at most 1 + 3 redirects`,
    );
    assert.equal(fx.sim.db.table('VDI').size, vdis, 'no VDI left behind');
  } finally {
    await fx.close();
  }
});
