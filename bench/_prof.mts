import { startSource, MiB } from '../test/hypervisor/xapi/source-fixture.ts';
const s = await startSource();
await s.write(0, 0, 3 * MiB, 0x31);
const t0 = performance.now();
const t = () => (performance.now() - t0).toFixed(0);
let p = await s.hypervisor.startBackupPoint(s.vm.vmUuid, { scope: 'j', blockSizeBytes: 65536, connections: 2 });
for (const d of p.disks) { const o = await d.openSource(); for await (const b of o.source.readBlocks()) void b; await o.source.close(); }
await p.commit(); console.log('commit1', t());
await s.write(0, 5 * MiB, 70000, 0x31);
p = await s.hypervisor.startBackupPoint(s.vm.vmUuid, { scope: 'j', blockSizeBytes: 65536, connections: 2, disks: p.disks.map(d => ({diskId: d.disk.id, previous: d.reference})) });
console.log('point', t());
for (const d of p.disks) { const o = await d.openSource(); console.log('open', t()); for await (const b of o.source.readBlocks()) void b; console.log('read', t()); await o.source.close(); console.log('closed', t()); }
await p.commit(); console.log('commit', t());
await s.close();
