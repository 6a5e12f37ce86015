// `backup restore-vm` as a user drives it, on the XAPI simulator declared in a config file: a job
// backs up a VM with two disks and two VIFs; the restore point is restored as a new VM (disks
// bit-exact, saved MACs, networks and MTUs, --json for scripts); a manifest written before
// descriptions were saved still restores, with the defaults and a warning.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCli } from '../../src/cli/run-cli.ts';
import { makeSimVhdEncoder } from '../xapi-sim/index.ts';
import { startSim } from '../hypervisor/xapi/sim-fixture.ts';
import { captureIo, cliInDataDir } from './capture-io.ts';

const MiB = 1024 * 1024;
const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface RestoredJson {
  machineId: string;
  disks: { location: string; sizeBytes: number }[];
  nics: { device: string; networkUuid: string; macAddress: string; mtu: number }[];
  warnings: { code: string }[];
}

test('CLI: backup restore-vm recreates a XAPI VM from a restore point', async () => {
  const fx = await startSim({ vhdEncoder: makeSimVhdEncoder({ exports: 0, blocks: 0 }) });
  try {
    fx.sim.faults.asyncDelayMs = 1;
    const vm = await fx.sim.addVm({
      nameLabel: 'db-01',
      disks: [
        { nameLabel: 'system', sizeBytes: 4 * MiB },
        { nameLabel: 'data', sizeBytes: 2 * MiB },
      ],
      vifs: [
        { network: 'Pool-wide network associated with eth0', mac: '02:00:00:aa:bb:01' },
        { network: 'Backup network', mac: '02:00:00:aa:bb:02', mtu: 9000 },
      ],
      fields: { VCPUs_max: 8, VCPUs_at_startup: 8, memory_static_max: 8 * 1024 * MiB },
    });
    await fx.sim.writeToVdi(vm.vdiUuids[0] ?? '', 512 * 1024, Buffer.alloc(MiB, 0x5a));
    await fx.sim.writeToVdi(vm.vdiUuids[1] ?? '', 0, Buffer.alloc(64 * 1024, 0x17));
    const images = await Promise.all(vm.vdiUuids.map((uuid) => fx.sim.readVdi(uuid)));
    const dataDir = join(fx.tmp.path, 'data');
    const nas = join(fx.tmp.path, 'nas');
    const sr = String(fx.sim.db.get('SR', fx.sim.db.srRefs[1])['uuid']);
    await runCli(['remote', 'list', '--data-dir', dataDir], captureIo().io); // creates the data dir
    await writeFile(
      join(dataDir, 'config.json'),
      JSON.stringify({
        remotes: [{ id: 'nas', store: { type: 'local', path: nas } }],
        sources: [
          {
            type: 'xapi',
            id: 'pool',
            url: fx.sim.url,
            username: fx.sim.credentials.username,
            password: fx.sim.credentials.password,
            preferNbd: false,
          },
        ],
        jobs: [
          {
            id: 'nightly',
            name: 'Nightly',
            source: 'pool',
            machines: { ids: [vm.vmUuid] },
            remotes: ['nas'],
          },
        ],
      }),
    );
    const cli = cliInDataDir(dataDir);
    const run = await cli('job', 'run', 'nightly');
    assert.equal(run.code, 0, run.out + run.err);
    const listed = await cli('backup', 'list', '--remote', 'nas', '--json');
    const pointId = (JSON.parse(listed.out) as { pointId: string }[])[0]?.pointId ?? '';
    assert.ok(pointId);

    const help = await cli('backup', 'restore-vm', '--help');
    assert.match(help.out, /--new-machine <label>/);
    assert.match(help.out, /Examples:\n {2}vmdelta backup restore-vm --remote nas/);

    fx.sim.db.removeVm(vm.vmRef); // the original is lost: its MACs are free again
    const restoreArgs = (label: string) =>
      [
        'backup',
        'restore-vm',
        '--remote',
        'nas',
        '--vm',
        vm.vmUuid,
        '--point',
        pointId,
        '--source',
        'pool',
        '--new-machine',
        label,
        '--storage',
        sr,
      ] as const;
    const restored = await cli(...restoreArgs('db-01 restored'), '--json');
    assert.equal(restored.code, 0, restored.out + restored.err);
    const result = JSON.parse(restored.out) as RestoredJson;
    assert.deepEqual(result.warnings, []);
    assert.deepEqual(
      result.nics.map((n) => [n.device, n.macAddress, n.mtu]),
      [
        ['0', '02:00:00:aa:bb:01', 1500],
        ['1', '02:00:00:aa:bb:02', 9000],
      ],
    );
    assert.equal(
      result.nics[1]?.networkUuid,
      String(fx.sim.db.get('network', fx.sim.db.storageNetworkRef)['uuid']),
    );
    for (const [i, disk] of result.disks.entries())
      assert.equal(sha(await fx.sim.readVdi(disk.location)), sha(images[i] ?? Buffer.alloc(0)));
    const record = fx.sim.db.get('VM', fx.sim.db.byUuid('VM', result.machineId));
    assert.equal(record['name_label'], 'db-01 restored');
    assert.equal(record['VCPUs_at_startup'], 8);
    assert.equal(record['memory_static_max'], 8 * 1024 * MiB);
    const vdiSr = fx.sim.db.get('VDI', fx.sim.db.byUuid('VDI', result.disks[0]?.location))['SR'];
    assert.equal(vdiSr, fx.sim.db.srRefs[1], 'disks on the SR asked for');

    // A manifest of an older vmdelta (no vm.metadata): still restores, with the defaults.
    const manifestDir = join(nas, 'points', vm.vmUuid);
    const [manifestFile] = await readdir(manifestDir);
    assert.ok(manifestFile);
    const manifest = JSON.parse(await readFile(join(manifestDir, manifestFile), 'utf8')) as {
      vm: Record<string, unknown>;
    };
    assert.ok(manifest.vm['metadata'], 'the engine saved the description');
    delete manifest.vm['metadata'];
    await writeFile(join(manifestDir, manifestFile), JSON.stringify(manifest));
    const old = await cli(...restoreArgs('db-01 from an old point'));
    assert.equal(old.code, 0, old.out + old.err);
    assert.match(old.out, /^machine [0-9a-f-]{36}\n/);
    assert.match(old.out, /warning METADATA_MISSING/);
    assert.doesNotMatch(old.out, /interface/);
    const oldId = /^machine (\S+)/.exec(old.out)?.[1] ?? '';
    const oldRecord = fx.sim.db.get('VM', fx.sim.db.byUuid('VM', oldId));
    assert.equal(oldRecord['VCPUs_at_startup'], 1);
    assert.equal(oldRecord['memory_static_max'], 1024 * MiB);

    const missing = await cli(...restoreArgs('x'), '--point', 'no-such-point');
    assert.notEqual(missing.code, 0, 'an unknown point is an error');
  } finally {
    await fx.close();
  }
});
