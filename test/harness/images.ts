/** Disk images for tests, made and written with qemu-img / qemu-io (tools nobody here wrote). */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { requireTool } from './tools.ts';
import { run } from './process.ts';

export async function createImage(
  path: string,
  format: 'raw' | 'qcow2',
  sizeBytes: number,
): Promise<void> {
  await run(requireTool('qemu-img'), ['create', '-q', '-f', format, path, String(sizeBytes)]);
}

/** Runs qemu-io commands such as 'write -P 0xaa 1M 64k' on an image file or NBD URI. */
export async function qemuIo(
  target: string,
  format: 'raw' | 'qcow2',
  commands: readonly string[],
): Promise<void> {
  const args = ['-f', format];
  for (const command of commands) args.push('-c', command);
  args.push(target);
  await run(requireTool('qemu-io'), args);
}

export async function addBitmap(
  image: string,
  name: string,
  granularityBytes?: number,
): Promise<void> {
  const args = ['bitmap', '--add'];
  if (granularityBytes !== undefined) args.push('--granularity', String(granularityBytes));
  args.push(image, name);
  await run(requireTool('qemu-img'), args);
}

/** sha256 of a file's bytes, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Converts any image qemu-img reads into a raw file. */
export async function toRaw(source: string, format: string, target: string): Promise<void> {
  await run(requireTool('qemu-img'), ['convert', '-f', format, '-O', 'raw', source, target]);
}
