import { openNbdPool } from './src/nbd/index.ts';
const MiB = 1024 * 1024;
const uri = process.argv[2] ?? 'nbd+unix:///?socket=/tmp/prof/s.sock';
for (const conns of [1, 4]) for (const split of [2 * MiB, 512 * 1024, 256 * 1024, 2 * MiB]) {
  const pool = await openNbdPool({ uri, connections: conns, readRequestBytes: split, maxInFlightBytes: 64 * MiB });
  const size = pool.info.sizeBytes;
  const t = performance.now();
  const cpu = process.cpuUsage();
  const q: Promise<Buffer>[] = [];
  let next = 0;
  for (;;) {
    while (next < size && q.length < 32) { q.push(pool.read(next, 2 * MiB)); next += 2 * MiB; }
    const h = q.shift(); if (!h) break; await h;
  }
  const u = process.cpuUsage(cpu);
  console.log(`conns ${conns} split ${split / 1024} KiB: ${(size / MiB / ((performance.now() - t) / 1000)).toFixed(0)} MiB/s cpu ${((u.user + u.system) / 1000).toFixed(0)} ms`);
  await pool.close();
}
