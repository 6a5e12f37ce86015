// NbdDisk keeps memory bounded by its in-flight window: with a slow consumer, the bytes the server
// was asked for never run ahead of the bytes consumed by more than the window (counted by a
// scripted server), whatever the disk size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { makeTempDir } from '../harness/index.ts';
import { openNbdDisk } from '../../src/disk/index.ts';
import { startFakeNbdServer } from '../nbd/fake-server.ts';
import { blockStatusChunk, dataChunk } from '../nbd/server-wire.ts';

const MiB = 1024 * 1024;

test('read-ahead never exceeds maxInFlightBytes beyond the block being consumed', async () => {
  const tmp = await makeTempDir('vmd-bnd-');
  const sizeBytes = 128 * MiB;
  const blockSizeBytes = 2 * MiB;
  const windowBytes = 8 * MiB;
  let requestedBytes = 0;
  const payload = Buffer.alloc(MiB, 0x3c);
  const server = await startFakeNbdServer(tmp.path, async (c) => {
    await c.handshake({ sizeBytes, flags: 0x03 });
    for (;;) {
      const r = await c.readRequest();
      const cookie = Number(r.cookie);
      if (r.command === 2) return;
      if (r.command === 7) {
        c.write(blockStatusChunk(cookie, 10, [[r.lengthBytes, 0]], true));
      } else if (r.command === 0) {
        requestedBytes += r.lengthBytes;
        c.write(dataChunk(cookie, r.offsetBytes, payload.subarray(0, r.lengthBytes), true));
      }
    }
  });
  try {
    const disk = await openNbdDisk({
      uri: server.uri,
      blockSizeBytes,
      mode: { kind: 'full' },
      maxInFlightBytes: windowBytes,
    });
    assert.equal(disk.blocks.count, 64);
    let consumedBytes = 0;
    let maxAhead = 0;
    for await (const block of disk.readBlocks()) {
      assert.ok(block.data.equals(Buffer.alloc(blockSizeBytes, 0x3c)));
      maxAhead = Math.max(maxAhead, requestedBytes - consumedBytes);
      consumedBytes += block.data.length;
      await sleep(2); // a slow consumer: the reader must wait for it
    }
    assert.equal(consumedBytes, sizeBytes);
    assert.ok(maxAhead <= windowBytes, `ran ${maxAhead} bytes ahead (window ${windowBytes})`);
    assert.ok(maxAhead >= blockSizeBytes, 'it did read ahead');
    await disk.close();
  } finally {
    await server.close();
    await tmp.remove();
  }
});
