/**
 * A real QEMU machine for the seam's contract: qemu-storage-daemon with two qcow2 disks, a
 * writable NBD export of each live disk (the guest stand-in writes through it with qemu-io), a
 * second QMP monitor for the test's own inspection, and the QemuHypervisor on the first monitor.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { KiB, MiB } from '../../src/core/index.ts';
import {
  QemuHypervisor,
  QmpClient,
  isScopeBitmap,
  parseBlockExports,
  parseBlockNodes,
  parseJobs,
  type BackupPointRequest,
  type OpenNbdDisk,
} from '../../src/hypervisor/index.ts';
import {
  createImage,
  makeTempDir,
  qemuIo,
  startQsd,
  type QsdInstance,
  type TempDir,
} from '../harness/index.ts';
import type { ContractSubject } from './contract.ts';
import { openDiskWithNbdTools, type ToolsTls } from './nbd-tools-disk.ts';

export interface QemuSubject extends ContractSubject {
  readonly tmp: TempDir;
  readonly qsd: QsdInstance;
  readonly inspector: QmpClient;
  readonly nbdSocketPath: string;
  readonly scratchDir: string;
  readonly images: readonly string[];
  liveUri(diskId: string): string;
  /** Replaces the hypervisor (e.g. after a simulated process restart). */
  hypervisor: QemuHypervisor<ToolsTls>;
}

export async function makeQemuSubject(
  options: {
    diskSizeBytes?: number;
    diskCount?: number;
    openDisk?: OpenNbdDisk<ToolsTls>;
  } = {},
): Promise<QemuSubject> {
  const diskSizeBytes = options.diskSizeBytes ?? 16 * MiB;
  const diskCount = options.diskCount ?? 2;
  const tmp = await makeTempDir('vmd-q-');
  const nbdSocketPath = join(tmp.path, 'nbd.sock');
  const inspectSocket = join(tmp.path, 'inspect.sock');
  const scratchDir = join(tmp.path, 'scratch');
  const images: string[] = [];
  const diskIds: string[] = [];
  const args: string[] = [
    '--chardev',
    `socket,path=${inspectSocket},server=on,wait=off,id=qmp1`,
    '--monitor',
    'chardev=qmp1',
    '--nbd-server',
    `addr.type=unix,addr.path=${nbdSocketPath}`,
  ];
  for (let i = 0; i < diskCount; i += 1) {
    const image = join(tmp.path, `disk${i}.qcow2`);
    await createImage(image, 'qcow2', diskSizeBytes);
    images.push(image);
    diskIds.push(`disk${i}`);
    args.push(
      '--blockdev',
      `driver=file,node-name=file${i},filename=${image}`,
      '--blockdev',
      `driver=qcow2,node-name=disk${i},file=file${i}`,
      '--export',
      `type=nbd,id=live-disk${i},node-name=disk${i},name=live-disk${i},writable=on`,
    );
  }
  const qsd = await startQsd({ dir: tmp.path, args });
  const inspector = await QmpClient.connect({ socketPath: inspectSocket });
  const openDisk = options.openDisk ?? openDiskWithNbdTools;
  const makeHypervisor = (): QemuHypervisor<ToolsTls> =>
    new QemuHypervisor({
      machines: [
        {
          id: 'vm1',
          qmp: { socketPath: qsd.qmpSocketPath },
          nbdServer: { transport: 'unix', socketPath: nbdSocketPath },
        },
      ],
      scratchDir,
      openDisk,
    });
  const liveUri = (diskId: string): string => `nbd+unix:///live-${diskId}?socket=${nbdSocketPath}`;
  const subject: QemuSubject = {
    tmp,
    qsd,
    inspector,
    nbdSocketPath,
    scratchDir,
    images,
    liveUri,
    hypervisor: makeHypervisor(),
    machineId: 'vm1',
    diskIds,
    diskSizeBytes,
    granularityBytes: 64 * KiB,
    write: async (diskId, offsetBytes, lengthBytes, pattern) => {
      await qemuIo(liveUri(diskId), 'raw', [
        `write -P 0x${pattern.toString(16)} ${offsetBytes} ${lengthBytes}`,
      ]);
    },
    crashDuringPoint: async (request: BackupPointRequest) => {
      // The QMP monitor takes one client at a time: free it for the child, which dies holding it.
      await subject.hypervisor.close();
      await runAndKill({
        machine: {
          id: 'vm1',
          qmp: { socketPath: qsd.qmpSocketPath },
          nbdServer: { transport: 'unix', socketPath: nbdSocketPath },
        },
        scratchDir,
        request,
      });
    },
    restart: async () => {
      await subject.hypervisor.close();
      subject.hypervisor = makeHypervisor();
    },
    // Every object named vmd-… (any scope) counts: the tests use one scope.
    leftovers: async () => {
      const found: string[] = [];
      for (const e of parseBlockExports(await inspector.execute('query-block-exports')))
        if (e.id.startsWith('vmd-')) found.push(`export:${e.id}`);
      for (const j of parseJobs(await inspector.execute('query-jobs')))
        if (j.id.startsWith('vmd-')) found.push(`job:${j.id}`);
      for (const n of parseBlockNodes(
        await inspector.execute('query-named-block-nodes', { flat: true }),
      ))
        if (n.nodeName.startsWith('vmd-') || n.drv === 'copy-before-write')
          found.push(`node:${n.nodeName}`);
      for (const file of await readdir(join(scratchDir, 'vm1')).catch(() => [] as string[]))
        if (file.startsWith('vmd-')) found.push(`file:${file}`);
      return found;
    },
    references: async (scope) => {
      const found: string[] = [];
      for (const n of parseBlockNodes(
        await inspector.execute('query-named-block-nodes', { flat: true }),
      )) {
        for (const b of n.bitmaps)
          if (isScopeBitmap(b.name, scope))
            found.push(`${n.nodeName}:${b.name}${b.recording ? '' : ':disabled'}`);
      }
      return found.sort();
    },
    close: async () => {
      await subject.hypervisor.close().catch(() => undefined);
      await inspector.close().catch(() => undefined);
      await qsd.stop();
      await tmp.remove();
    },
  };
  return subject;
}

/** Runs the crash fixture until it reports its point, then SIGKILLs it. */
export async function runAndKill(args: object): Promise<void> {
  const fixture = new URL('./fixtures/crash-point.ts', import.meta.url).pathname;
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, JSON.stringify(args)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`crash fixture not ready: ${output}`)), 30_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('ready')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', () => {
      clearTimeout(timer);
      if (!output.includes('ready')) reject(new Error(`crash fixture exited: ${output}`));
    });
  });
  child.kill('SIGKILL');
  await exited;
}
