import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  XapiError,
  enableNbdOnNetwork,
  disableNbdOnNetwork,
  getNbdInfo,
  listNetworks,
  requireNbdInfo,
  snapshotVm,
  type XapiNbdEndpoint,
} from '../../../src/hypervisor/xapi/index.ts';
import { requireTool, run } from '../../harness/index.ts';
import { startSim } from './sim-fixture.ts';

const MiB = 1024 * 1024;

/** libnbd URI for an XAPI NBD entry, trusting only the certificate XAPI returned. */
async function nbdUri(entry: XapiNbdEndpoint, dir: string): Promise<string> {
  const certDir = join(dir, `pin-${entry.port}`);
  await mkdir(certDir, { recursive: true });
  await writeFile(join(certDir, 'ca-cert.pem'), entry.certPem);
  return `nbds://${entry.address}:${entry.port}/${encodeURIComponent(entry.exportName.reveal())}?tls-certificates=${certDir}`;
}

test('networks: NBD enabled on the backup network; both purposes are incompatible', async () => {
  const fx = await startSim();
  try {
    const session = await fx.connect();
    const networks = await listNetworks(session);
    const backup = networks.find((n) => n.record.name_label === 'Backup network');
    const management = networks.find((n) => n.record.name_label.startsWith('Pool-wide'));
    assert.ok(backup !== undefined && management !== undefined);
    assert.deepEqual([backup.nbd, backup.addresses], ['off', ['127.0.0.1']]);
    assert.deepEqual(management.addresses, ['127.0.0.1', '127.0.0.2']);
    await enableNbdOnNetwork(session, backup.ref);
    await enableNbdOnNetwork(session, backup.ref); // idempotent
    assert.equal((await listNetworks(session)).find((n) => n.ref === backup.ref)?.nbd, 'tls');
    const error = await enableNbdOnNetwork(session, management.ref, { insecure: true }).catch(
      (e: unknown) => e,
    );
    assert.ok(error instanceof XapiError);
    assert.equal(error.xapiCode, 'NETWORK_INCOMPATIBLE_PURPOSES');
    await disableNbdOnNetwork(session, backup.ref);
    assert.equal((await listNetworks(session)).find((n) => n.ref === backup.ref)?.nbd, 'off');
  } finally {
    await fx.close();
  }
});

test('get_nbd_info points at a TLS NBD server that nbdinfo/nbdcopy read, bit-exact', async () => {
  requireTool('nbdinfo');
  requireTool('nbdcopy');
  const fx = await startSim({ tls: true });
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'db',
      disks: [{ nameLabel: 'd', sizeBytes: 4 * MiB }],
    });
    await fx.sim.writeToVdi(vm.vdiRefs[0] ?? '', MiB, randomBytes(MiB + 512));
    const session = await fx.connect();
    const snapshot = await snapshotVm(session, vm.vmRef, { nameLabel: 's' });
    const snapshotVdi = snapshot.vdiRefs[0] ?? '';
    assert.deepEqual(await getNbdInfo(session, snapshotVdi), [], 'no NBD network yet');
    await assert.rejects(requireNbdInfo(session, snapshotVdi), { code: 'XAPI_NO_NBD' });

    const backup = (await listNetworks(session)).find(
      (n) => n.record.name_label === 'Backup network',
    );
    await enableNbdOnNetwork(session, backup?.ref ?? '');
    const entries = await requireNbdInfo(session, snapshotVdi);
    assert.equal(entries.length, 1);
    const entry = entries[0];
    assert.ok(entry !== undefined);
    assert.equal(entry.address, '127.0.0.1');
    assert.equal(entry.subject, 'localhost');
    assert.equal(String(entry.exportName), '<secret>');
    assert.equal(
      JSON.stringify(entry).includes(entry.exportName.reveal()),
      false,
      'export name never serialised',
    );
    assert.ok(
      entry.exportName
        .reveal()
        .startsWith(`/${(await session.call('VDI.get_uuid', [snapshotVdi])) as string}?`),
    );

    const uri = await nbdUri(entry, fx.tmp.path);
    const info = await run(requireTool('nbdinfo'), ['--size', uri]);
    assert.equal(Number(info.trim()), 4 * MiB);
    const copy = join(fx.tmp.path, 'copy.raw');
    await run(requireTool('nbdcopy'), [uri, copy]);
    assert.ok(
      (await readFile(copy)).equals(await fx.sim.readVdi(snapshotVdi)),
      'NBD data equals the snapshot',
    );

    // A wrong export name is refused (the name is the secret).
    const wrong = uri.replace(
      encodeURIComponent('session_id='),
      encodeURIComponent('session_id=x'),
    );
    await assert.rejects(run(requireTool('nbdinfo'), ['--size', wrong]));
    // Restricting entries to other addresses leaves none.
    assert.deepEqual(
      await getNbdInfo(session, snapshotVdi, { allowedAddresses: new Set(['10.0.0.1']) }),
      [],
    );
  } finally {
    await fx.close();
  }
});

test('the dropped-NBD-connection toggle cuts a transfer', async () => {
  const fx = await startSim({ tls: true });
  try {
    const vm = await fx.sim.addVm({
      nameLabel: 'db',
      disks: [{ nameLabel: 'd', sizeBytes: 8 * MiB }],
    });
    await fx.sim.writeToVdi(vm.vdiRefs[0] ?? '', 0, randomBytes(8 * MiB));
    const session = await fx.connect();
    const snapshot = await snapshotVm(session, vm.vmRef, { nameLabel: 's' });
    const backup = (await listNetworks(session)).find(
      (n) => n.record.name_label === 'Backup network',
    );
    await enableNbdOnNetwork(session, backup?.ref ?? '');
    const [entry] = await requireNbdInfo(session, snapshot.vdiRefs[0] ?? '');
    assert.ok(entry !== undefined);
    fx.sim.faults.dropNbdAfterBytes = MiB;
    const uri = await nbdUri(entry, fx.tmp.path);
    await assert.rejects(run(requireTool('nbdcopy'), [uri, join(fx.tmp.path, 'cut.raw')]));
    fx.sim.faults.dropNbdAfterBytes = undefined;
    await run(requireTool('nbdcopy'), [uri, join(fx.tmp.path, 'whole.raw')]);
    assert.ok(
      (await readFile(join(fx.tmp.path, 'whole.raw'))).equals(
        await fx.sim.readVdi(snapshot.vdiRefs[0] ?? ''),
      ),
    );
  } finally {
    await fx.close();
  }
});
