// The web page in headless Chromium (Debian `chromium` driven by playwright-core) against a real
// `vmdelta serve` process and a qemu-storage-daemon machine: log in, add a local remote through
// the Remotes form and test it, create an incremental job through the Backup form (with a
// bandwidth limit so the run is slow enough to watch), run it, watch live progress reach the
// end, open the log and see the NBD line, and restore the point bit-exact. Screenshots are kept
// under test-artifacts/browser/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { DemoMachine } from '../../src/cli/demo/demo-machine.ts';
import { MiB } from '../../src/core/index.ts';
import { makeTempDir, requireTool } from '../harness/index.ts';
import { PASSWORD, USER, call, login, setPassword, startServe } from './serve-harness.ts';

const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts', 'browser');
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

test('web page: log in, add a remote, create a job, run it with live progress, read the log, restore with live progress', async () => {
  const executablePath = requireTool('chromium');
  requireTool('qemu-storage-daemon');
  await mkdir(ARTIFACTS, { recursive: true });
  const tmp = await makeTempDir('vmd-web-');
  const machine = await DemoMachine.start(tmp.path, [24 * MiB, 8 * MiB]);
  let served: Awaited<ReturnType<typeof startServe>> | undefined;
  let context: Awaited<ReturnType<typeof chromium.launchPersistentContext>> | undefined;
  try {
    await machine.guestWrites('disk0', 24, 11);
    await machine.guestWrites('disk1', 8, 12);
    const expectedDisk0 = machine.checksum('disk0');
    const dataDir = join(tmp.path, 'data');
    await setPassword(dataDir);
    served = await startServe(dataDir);
    const { url } = served;
    // The hypervisor source is declared through the API (the page has no source form).
    const cookie = await login(url);
    const sourceAnswer = await call(url, cookie, 'PUT', '/api/sources/lab', {
      type: 'qemu',
      id: 'lab',
      machines: [
        {
          id: machine.id,
          label: 'web test machine',
          qmpSocket: machine.qmpSocket,
          nbdServer: { transport: 'unix', socketPath: machine.nbdSocket },
        },
      ],
    });
    assert.equal(sourceAnswer.status, 200);

    context = await chromium.launchPersistentContext(join(tmp.path, 'chromium-profile'), {
      executablePath,
      args: CHROMIUM_FLAGS,
      headless: true,
      viewport: { width: 1280, height: 900 },
    });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Records whether any progress bar ever reached its end while the run was live.
    await page.addInitScript({
      content: `document.addEventListener('DOMContentLoaded', () => {
        new MutationObserver(() => {
          for (const p of document.querySelectorAll('progress'))
            if (p.max > 1 && p.value >= p.max) window.sawFullProgress = true;
        }).observe(document.body, { childList: true, subtree: true });
      });`,
    });

    // Log in.
    await page.goto(`${url}/`);
    assert.match(page.url(), /\/login\.html$/);
    await page.fill('input[name=user]', USER);
    await page.fill('input[name=password]', 'wrong password');
    await page.click('button[type=submit]');
    await page.waitForSelector('#login-error:has-text("Wrong")');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
    await page.waitForSelector('#new-job');
    assert.equal(await page.textContent('#user'), USER);

    // Remotes: add a local folder, test it.
    await page.goto(`${url}/#/remotes`);
    await page.fill('#remote-form input[name=id]', 'local');
    await page.fill('#remote-form input[name=name]', 'Local folder');
    await page.fill('#remote-form input[name=path]', join(tmp.path, 'remote'));
    await page.click('#test-remote');
    await page.waitForSelector('#remote-message:has-text("reachable")');
    await page.click('#remote-form button[type=submit]');
    await page.waitForSelector('tr[data-remote=local]');
    await page.screenshot({ path: join(ARTIFACTS, '1-remotes.png'), fullPage: true });

    // Backup: create a job through the form.
    await page.goto(`${url}/#/backup/new`);
    await page.fill('#job-form input[name=id]', 'web-job');
    await page.fill('#job-form input[name=name]', 'Web nightly');
    await page.check(`#machines input[value="${machine.id}"]`);
    await page.check('#remotes input[value=local]');
    await page.fill('tr.schedule input[name=s-retention]', '4');
    await page.click('#advanced summary');
    await page.fill('input[name=fullInterval]', '5');
    await page.fill('input[name=nbdConcurrency]', '3');
    await page.fill('input[name=maxExportRateMiB]', '4');
    await page.screenshot({ path: join(ARTIFACTS, '2-job-form.png'), fullPage: true });
    await page.click('#save-job');
    await page.waitForSelector('tr[data-job=web-job]');
    const saved = (await call(url, cookie, 'GET', '/api/jobs/web-job')).json as {
      settings: { fullInterval: number; nbdConcurrency: number; maxExportRate: number };
      schedules: { exportRetention: number }[];
    };
    assert.equal(saved.settings.fullInterval, 5);
    assert.equal(saved.settings.nbdConcurrency, 3);
    assert.equal(saved.settings.maxExportRate, 4 * MiB);
    assert.equal(saved.schedules[0]?.exportRetention, 4);
    await page.screenshot({ path: join(ARTIFACTS, '3-backup-view.png'), fullPage: true });

    // Run it and watch the live progress, then the log.
    await page.click('tr[data-job=web-job] button.run-now');
    await page.waitForSelector('#run-progress tr.disk-progress', { timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, '4-run-progress.png'), fullPage: true });
    await page.waitForSelector('#log-text', { timeout: 60_000 });
    assert.equal(await page.evaluate('window.sawFullProgress === true'), true);
    const logText = (await page.textContent('#log-text')) ?? '';
    assert.match(logText, /Transfer data using NBD \(3 connections\)/);
    assert.match(logText, /SUCCESS/);
    const transports = await page.locator('#run-log .transport').allTextContents();
    assert.deepEqual(transports, [
      'Transfer data using NBD (3 connections)',
      'Transfer data using NBD (3 connections)',
    ]);
    assert.equal(await page.locator('#run-log .remote-write .badge-key').count(), 2);
    await page.screenshot({ path: join(ARTIFACTS, '5-run-log.png'), fullPage: true });

    // The Runs view lists it; the Remotes view shows the usage.
    await page.goto(`${url}/#/runs`);
    await page.waitForSelector('#run-list tr.run .badge-success');
    await page.screenshot({ path: join(ARTIFACTS, '5b-runs.png'), fullPage: true });
    await page.goto(`${url}/#/remotes`);
    await page.click('tr[data-remote=local] td:nth-child(4) button');
    await page.waitForSelector('tr[data-remote=local] .usage:has-text("1 restore points")');

    // The Backup view shows the last run.
    await page.goto(`${url}/#/backup`);
    await page.waitForSelector('tr[data-job=web-job] .last-run .badge-success');

    // Restore the point to a folder.
    const restoreDir = join(tmp.path, 'restored');
    await page.goto(`${url}/#/restore`);
    await page.click('.timeline .point');
    await page.waitForSelector('#point-detail .badge-key');
    await page.fill('#point-detail input[name=dir]', restoreDir);
    await page.selectOption('#point-detail select[name=format]', 'raw');
    // Every text the live progress line shows is recorded (it is replaced by the result).
    await page.evaluate(`
      window.progressTexts = [];
      new MutationObserver(() => {
        const text = document.querySelector('#restore-progress')?.textContent;
        if (text) window.progressTexts.push(text);
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    `);
    await page.click('#restore-button');
    await page.waitForSelector('.restored-file', { timeout: 30_000 });
    const progressTexts = await page.evaluate<string[]>('window.progressTexts');
    assert.ok(
      progressTexts.some((t) => /^restoring disk\d: [\d.]+ \S+ of [\d.]+ MiB/.test(t)),
      `live restore progress shown: ${JSON.stringify(progressTexts)}`,
    );
    await page.screenshot({ path: join(ARTIFACTS, '6-restore.png'), fullPage: true });
    const restored = createHash('sha256')
      .update(await readFile(join(restoreDir, `${machine.id}-disk0.raw`)))
      .digest('hex');
    assert.equal(restored, expectedDisk0);
    assert.deepEqual(pageErrors, []);
  } finally {
    await context?.close();
    await served?.stop();
    await machine.stop();
    await tmp.remove();
  }
});
