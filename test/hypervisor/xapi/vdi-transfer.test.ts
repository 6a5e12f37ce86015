import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import {
  XapiError,
  exportRawVdi,
  importRawVdi,
  type XapiSession,
} from '../../../src/hypervisor/xapi/index.ts';
import { startSim } from './sim-fixture.ts';

const MiB = 1024 * 1024;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function exportBytes(
  session: XapiSession,
  vdi: string,
): Promise<{ data: Buffer; servedBy: string }> {
  const transfer = await exportRawVdi(session, { vdi, format: 'raw' });
  const data = await readAll(transfer.stream);
  await transfer.finish();
  assert.equal(transfer.contentLengthBytes, data.length);
  return { data, servedBy: transfer.servedBy };
}

for (const tls of [false, true]) {
  test(`export and import raw round-trip bit-exact (${tls ? 'HTTPS pinned' : 'HTTP'})`, async () => {
    const fx = await startSim({ tls });
    try {
      const vm = await fx.sim.addVm({
        nameLabel: 'db',
        disks: [{ nameLabel: 'data', sizeBytes: 8 * MiB }],
      });
      const vdi = vm.vdiUuids[0] ?? '';
      const pattern = randomBytes(3 * MiB + 4096);
      await fx.sim.writeToVdi(vdi, 2 * MiB + 512, pattern);
      const session = await fx.connect();
      const { data } = await exportBytes(session, vdi);
      assert.ok(data.equals(await fx.sim.readVdi(vdi)), 'export equals the image');
      assert.ok(data.subarray(2 * MiB + 512, 2 * MiB + 512 + pattern.length).equals(pattern));
      // Import a new content into a second disk, then export it again.
      const target = await fx.sim.addVm({
        nameLabel: 'restore',
        disks: [{ nameLabel: 'r', sizeBytes: 8 * MiB }],
      });
      const targetVdi = target.vdiRefs[0] ?? '';
      await importRawVdi(session, {
        vdi: targetVdi,
        format: 'raw',
        openBody: () => Readable.from([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]),
        contentLengthBytes: data.length,
      });
      assert.ok((await fx.sim.readVdi(targetVdi)).equals(data), 'import wrote the exact bytes');
      assert.deepEqual(await session.call('task.get_all'), [], 'transfer tasks destroyed');
    } finally {
      await fx.close();
    }
  });
}

test('302 redirect to another host is followed with the same session', async () => {
  const fx = await startSim({ tls: true });
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'a',
      disks: [{ nameLabel: 'd', sizeBytes: 2 * MiB }],
    });
    await fx.sim.writeToVdi(vm.vdiRefs[0] ?? '', 0, randomBytes(MiB));
    fx.sim.faults.redirectTransfers = true;
    const session = await fx.connect();
    const { data, servedBy } = await exportBytes(session, vm.vdiRefs[0] ?? '');
    assert.equal(servedBy.split(':')[0], '127.0.0.2');
    assert.ok(data.equals(await fx.sim.readVdi(vm.vdiRefs[0] ?? '')));
    const body = randomBytes(2 * MiB);
    await importRawVdi(session, {
      vdi: vm.vdiUuids[0] ?? '',
      format: 'raw',
      openBody: () => Readable.from([body]),
      contentLengthBytes: body.length,
    });
    assert.ok((await fx.sim.readVdi(vm.vdiRefs[0] ?? '')).equals(body));
  } finally {
    await fx.close();
  }
});

test('an HTTP error embedded in a 200 body is detected (xen-api #4603)', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({ nameLabel: 'a', disks: [{ nameLabel: 'd', sizeBytes: MiB }] });
    fx.sim.faults.embedErrorInExport = true;
    const session = await fx.connect();
    const transfer = await exportRawVdi(session, { vdi: vm.vdiRefs[0] ?? '', format: 'raw' });
    await assert.rejects(readAll(transfer.stream), (error: unknown) => {
      assert.ok(error instanceof XapiError);
      assert.equal(error.code, 'XAPI_EMBEDDED_ERROR');
      assert.match(error.message, /HTTP\/1\.1 500/);
      return true;
    });
    await assert.rejects(transfer.finish(), { code: 'XAPI_TASK_FAILED', xapiCode: 'VDI_IO_ERROR' });
  } finally {
    await fx.close();
  }
});

test('an export cut before its Content-Length is XAPI_STREAM_TRUNCATED', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'a',
      disks: [{ nameLabel: 'd', sizeBytes: 4 * MiB }],
    });
    fx.sim.faults.truncateExportAfterBytes = MiB + 17;
    const session = await fx.connect();
    const transfer = await exportRawVdi(session, { vdi: vm.vdiRefs[0] ?? '', format: 'raw' });
    const error = await readAll(transfer.stream).catch((e: unknown) => e);
    assert.ok(error instanceof XapiError, 'the short stream fails with a typed error');
    assert.equal(error.code, 'XAPI_STREAM_TRUNCATED');
    assert.equal(error.retryable, true);
    await transfer.abort();
    assert.deepEqual(await session.call('task.get_all'), []);
  } finally {
    await fx.close();
  }
});

test('format=vhd without the injected encoder: HTTP error typed with the task error', async () => {
  const fx = await startSim();
  try {
    const vm = await fx.sim.addVm({ nameLabel: 'a', disks: [{ nameLabel: 'd', sizeBytes: MiB }] });
    const session = await fx.connect();
    const error = await exportRawVdi(session, { vdi: vm.vdiRefs[0] ?? '', format: 'vhd' }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof XapiError);
    assert.equal(error.code, 'XAPI_HTTP_STATUS');
    assert.equal(error.details['statusCode'], 500);
    assert.equal(error.xapiCode, 'INTERNAL_ERROR');
    assert.deepEqual(await session.call('task.get_all'), []);
  } finally {
    await fx.close();
  }
});

test('the vhdEncoder hook receives the image and base paths', async () => {
  const seen: { path: string; basePath?: string }[] = [];
  const fx = await startSim({
    vhdEncoder: async (input) => {
      seen.push(input);
      const body = Buffer.from(`vhd of ${input.virtualSizeBytes}`);
      return { stream: Readable.from([body]), lengthBytes: body.length };
    },
  });
  try {
    const vm = await fx.sim.addVm({ nameLabel: 'a', disks: [{ nameLabel: 'd', sizeBytes: MiB }] });
    const session = await fx.connect();
    const base = vm.vdiUuids[0] ?? '';
    const transfer = await exportRawVdi(session, { vdi: vm.vdiRefs[0] ?? '', format: 'vhd', base });
    assert.equal(await text(transfer.stream), `vhd of ${MiB}`);
    await transfer.finish();
    assert.equal(transfer.contentType, 'application/vhd');
    assert.equal(seen[0]?.basePath, fx.sim.vdiPath(base));
  } finally {
    await fx.close();
  }
});

test('import refuses an unknown length up front', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    await assert.rejects(
      importRawVdi(session, {
        vdi: 'x',
        format: 'raw',
        openBody: () => Readable.from([]),
        contentLengthBytes: Number.NaN,
      }),
      { code: 'XAPI_PROTOCOL' },
    );
  } finally {
    await fx.close();
  }
});
