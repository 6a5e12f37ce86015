/**
 * The demo's virtual machine: a qemu-storage-daemon with two generated qcow2 disks, a QMP socket
 * for vmdelta, and a writable NBD export of each live disk through which the demo plays the guest
 * (writes go through vmdelta's own NBD client). An in-memory copy of each disk lets the demo
 * prove restores bit-exact.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openNbdSink } from '../../disk/index.ts';

const run = promisify(execFile);

export interface DemoDisk {
  readonly id: string;
  readonly sizeBytes: number;
  readonly image: string;
  /** What the guest wrote: the disk's expected content. */
  readonly content: Buffer;
}

export class DemoMachine {
  readonly id = 'demo-vm';
  readonly dir: string;
  readonly qmpSocket: string;
  readonly nbdSocket: string;
  readonly disks: readonly DemoDisk[];
  readonly #pid: number;

  private constructor(dir: string, disks: DemoDisk[], pid: number) {
    this.dir = dir;
    this.qmpSocket = join(dir, 'qmp.sock');
    this.nbdSocket = join(dir, 'nbd.sock');
    this.disks = disks;
    this.#pid = pid;
  }

  static async start(dir: string, diskSizesBytes: readonly number[]): Promise<DemoMachine> {
    const disks: DemoDisk[] = [];
    const args = [
      '--chardev',
      `socket,path=${join(dir, 'qmp.sock')},server=on,wait=off,id=qmp0`,
      '--monitor',
      'chardev=qmp0',
      '--nbd-server',
      `addr.type=unix,addr.path=${join(dir, 'nbd.sock')}`,
    ];
    for (const [i, sizeBytes] of diskSizesBytes.entries()) {
      const id = `disk${i}`;
      const image = join(dir, `${id}.qcow2`);
      await run('qemu-img', ['create', '-q', '-f', 'qcow2', image, String(sizeBytes)]);
      disks.push({ id, sizeBytes, image, content: Buffer.alloc(sizeBytes) });
      args.push(
        '--blockdev',
        `driver=file,node-name=file-${id},filename=${image}`,
        '--blockdev',
        `driver=qcow2,node-name=${id},file=file-${id}`,
        '--export',
        `type=nbd,id=live-${id},node-name=${id},name=live-${id},writable=on`,
      );
    }
    const pidFile = join(dir, 'qsd.pid');
    await run('qemu-storage-daemon', [...args, '--pidfile', pidFile, '--daemonize']);
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return new DemoMachine(dir, disks, pid);
  }

  /** The guest writes `count` random 64 KiB-aligned extents of 4 KiB to 1 MiB into a disk. */
  async guestWrites(diskId: string, count: number, seed: number): Promise<number> {
    const disk = this.disks.find((d) => d.id === diskId);
    if (disk === undefined) throw new Error(`no disk ${diskId}`);
    const sink = await openNbdSink({ uri: `nbd+unix:///live-${diskId}?socket=${this.nbdSocket}` });
    let written = 0;
    let state = seed;
    const next = (): number => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state;
    };
    try {
      for (let i = 0; i < count; i += 1) {
        const lengthBytes = 4096 * (1 + (next() % 256));
        const offsetBytes = 65536 * (next() % Math.floor((disk.sizeBytes - lengthBytes) / 65536));
        const data = randomBytes(lengthBytes);
        data.copy(disk.content, offsetBytes);
        await sink.writeBlock(offsetBytes / 4096, data, 4096);
        written += lengthBytes;
      }
    } finally {
      await sink.close();
    }
    return written;
  }

  checksum(diskId: string): string {
    const disk = this.disks.find((d) => d.id === diskId);
    if (disk === undefined) throw new Error(`no disk ${diskId}`);
    return createHash('sha256').update(disk.content).digest('hex');
  }

  async stop(): Promise<void> {
    try {
      process.kill(this.#pid, 'SIGTERM');
    } catch {
      return;
    }
    for (let i = 0; i < 200; i += 1) {
      try {
        process.kill(this.#pid, 0);
      } catch {
        break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    await rm(this.nbdSocket, { force: true });
  }
}
