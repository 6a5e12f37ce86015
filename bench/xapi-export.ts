/**
 * Benchmark: export_raw_vdi through the XAPI client (HTTPS with a pinned certificate, checked
 * stream) against curl fetching the same URL, from the same simulator running in its own process,
 * in the same run. Run: node --import tsx bench/xapi-export.ts [sizeMiB]
 */
import { randomBytes } from 'node:crypto';
import { execFile, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { exportRawVdi, fingerprintOfPem, openXapiSession } from '../src/hypervisor/xapi/index.ts';
import { makePki, makeTempDir, requireTool, stopPid } from '../test/harness/index.ts';
import { XapiSimulator } from '../test/xapi-sim/index.ts';

const MiB = 1024 * 1024;
const execFileAsync = promisify(execFile);

interface Served {
  readonly url: string;
  readonly vdi: string;
  readonly certFile: string;
  readonly username: string;
  readonly password: string;
}

/** Child mode: serve a simulator with one VDI of random data, print where, wait to be killed. */
async function serve(sizeMiB: number): Promise<void> {
  const tmp = await makeTempDir('vmd-xbench-');
  const pki = await makePki(join(tmp.path, 'pki'));
  const sim = await XapiSimulator.start({ dir: tmp.path, pki });
  const vm = await sim.addVm({
    nameLabel: 'bench',
    disks: [{ nameLabel: 'd', sizeBytes: sizeMiB * MiB }],
  });
  const vdi = vm.vdiRefs[0] ?? '';
  const chunk = randomBytes(16 * MiB);
  for (let offset = 0; offset < sizeMiB * MiB; offset += chunk.length)
    await sim.writeToVdi(vdi, offset, chunk);
  const served: Served = { url: sim.url, vdi, certFile: pki.serverCertFile, ...sim.credentials };
  console.log(JSON.stringify(served));
  process.once('SIGTERM', () => {
    void sim
      .stop()
      .then(() => tmp.remove())
      .then(() => process.exit(0));
  });
}

async function measure(sizeMiB: number): Promise<void> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve', String(sizeMiB)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    const first = await createInterface({ input: child.stdout })[Symbol.asyncIterator]().next();
    const served = JSON.parse(String(first.value)) as Served;
    const fingerprint = fingerprintOfPem(await readFile(served.certFile, 'utf8'));
    const session = await openXapiSession({
      url: served.url,
      username: served.username,
      password: served.password,
      trust: { kind: 'pinned', sha256Fingerprints: [fingerprint] },
    });
    const ours: number[] = [];
    const curl: number[] = [];
    const plainNode: number[] = [];
    const insecureAgent = new HttpsAgent({ rejectUnauthorized: false });
    for (let round = 0; round < 3; round += 1) {
      let start = performance.now();
      const transfer = await exportRawVdi(session, { vdi: served.vdi, format: 'raw' });
      let bytes = 0;
      for await (const part of transfer.stream) bytes += (part as Buffer).length;
      await transfer.finish();
      if (bytes !== sizeMiB * MiB) throw new Error(`short export: ${bytes}`);
      ours.push(performance.now() - start);
      const url = `${served.url}/export_raw_vdi?session_id=${encodeURIComponent(session.revealSessionRef())}&vdi=${encodeURIComponent(served.vdi)}&format=raw`;
      start = performance.now();
      await execFileAsync(requireTool('curl'), ['-sSfk', '-o', '/dev/null', url]);
      curl.push(performance.now() - start);
      start = performance.now();
      await new Promise<void>((resolve, reject) => {
        httpsGet(url, { agent: insecureAgent }, (response) => {
          response.on('data', () => undefined);
          response.once('end', resolve);
          response.once('error', reject);
        }).once('error', reject);
      });
      plainNode.push(performance.now() - start);
    }
    await session.close();
    const best = (values: number[]) => Math.min(...values);
    const rate = (ms: number) => ((sizeMiB / ms) * 1000).toFixed(0);
    console.log(
      `export_raw_vdi raw, ${sizeMiB} MiB over HTTPS, simulator in its own process, best of 3`,
    );
    console.log(`  vmdelta client: ${best(ours).toFixed(0)} ms (${rate(best(ours))} MiB/s)`);
    console.log(`  curl -k       : ${best(curl).toFixed(0)} ms (${rate(best(curl))} MiB/s)`);
    console.log(
      `  node https.get, no checks: ${best(plainNode).toFixed(0)} ms (${rate(best(plainNode))} MiB/s)`,
    );
    console.log(`  ratio (curl time / ours): ${(best(curl) / best(ours)).toFixed(2)}`);
    console.log(`  ratio (plain node time / ours): ${(best(plainNode) / best(ours)).toFixed(2)}`);
  } finally {
    if (child.pid !== undefined) await stopPid(child.pid, 10_000);
  }
}

if (process.argv[2] === '--serve') await serve(Number(process.argv[3] ?? '512'));
else await measure(Number(process.argv[2] ?? '512'));
