/**
 * XAPI-simulator side: GET /export_raw_vdi and PUT /import_raw_vdi (xapi.md §5), with the 302
 * redirect, embedded-error and truncation toggles. format=raw streams the image file; format=vhd
 * goes through the injected `vhdEncoder` (the VHD writer of the VHD codec work).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { openVhdStreamDisk } from '../../src/disk/index.ts';
import { SimApiError } from './pool-db.ts';
import { checkSession } from './rpc-methods.ts';
import type { SimContext } from './sim-context.ts';
import { finishSimTask } from './sim-tasks.ts';

function failTask(ctx: SimContext, taskRef: string | null, info: readonly string[]): void {
  finishSimTask(ctx, taskRef, 'failure', '', info);
}

function succeedTask(ctx: SimContext, taskRef: string | null): void {
  finishSimTask(ctx, taskRef, 'success');
}

function answer(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' });
  res.end(text);
}

/** Handles one HTTP transfer request; returns false when the path is not a transfer handler. */
export async function handleTransfer(
  ctx: SimContext,
  host: 'master' | 'member',
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const url = new URL(req.url ?? '/', 'http://sim');
  const isExport = req.method === 'GET' && url.pathname === '/export_raw_vdi';
  const isImport = req.method === 'PUT' && url.pathname === '/import_raw_vdi';
  if (!isExport && !isImport) return false;
  const taskRef = url.searchParams.get('task_id');
  try {
    checkSession(ctx, url.searchParams.get('session_id'));
  } catch {
    answer(res, 401, 'Unauthorised');
    return true;
  }
  if ((ctx.faults.redirectTransfers && host === 'master') || ctx.faults.redirectTransfersForever) {
    req.resume();
    res.writeHead(302, {
      location: `${ctx.hostUrl(host === 'master' ? 'member' : 'master')}${url.pathname}${url.search}`,
      connection: 'close',
    });
    res.end();
    return true;
  }
  let vdiRef: string;
  try {
    vdiRef = ctx.db.resolve('VDI', url.searchParams.get('vdi') ?? '');
  } catch (error) {
    const info =
      error instanceof SimApiError ? [error.xapiCode, ...error.xapiParams] : ['INTERNAL_ERROR'];
    failTask(ctx, taskRef, info);
    answer(res, 404, 'VDI not found');
    return true;
  }
  const format = url.searchParams.get('format') ?? 'raw';
  if (format !== 'raw' && format !== 'vhd') {
    failTask(ctx, taskRef, ['INTERNAL_ERROR', `unknown format ${format}`]);
    answer(res, 404, 'unknown format');
    return true;
  }
  if (isExport) await exportVdi(ctx, taskRef, vdiRef, format, url.searchParams.get('base'), res);
  else await importVdi(ctx, taskRef, vdiRef, format, req, res);
  return true;
}

async function exportVdi(
  ctx: SimContext,
  taskRef: string | null,
  vdiRef: string,
  format: 'raw' | 'vhd',
  base: string | null,
  res: ServerResponse,
): Promise<void> {
  const vdi = ctx.db.get('VDI', vdiRef);
  const path = ctx.db.vdiFiles.get(vdiRef);
  if (path === undefined) {
    failTask(ctx, taskRef, ['VDI_INCOMPATIBLE_TYPE', vdiRef, String(vdi['type'])]);
    answer(res, 500, 'VDI has no data');
    return;
  }
  const uuid = String(vdi['uuid']);
  if (ctx.faults.embedErrorInExport) {
    failTask(ctx, taskRef, ['VDI_IO_ERROR', 'Device I/O errors']);
    res.writeHead(200, { 'content-type': 'application/octet-stream', connection: 'close' });
    res.end('HTTP/1.1 500 Internal Error\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  let stream: NodeJS.ReadableStream;
  let lengthBytes: number | undefined;
  if (format === 'raw') {
    lengthBytes = Number(vdi['virtual_size']);
    stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
  } else {
    if (ctx.vhdEncoder === undefined) {
      failTask(ctx, taskRef, ['INTERNAL_ERROR', 'the simulator has no vhdEncoder']);
      answer(res, 500, 'vhd export is not available in this simulator');
      return;
    }
    let basePath: string | undefined;
    if (base !== null) {
      const baseRef = ctx.db.resolve('VDI', base);
      basePath = ctx.db.vdiFiles.get(baseRef);
      const baseVdi = ctx.db.get('VDI', baseRef);
      const liveOf = (record: Record<string, unknown>, ref: string): string =>
        record['is_a_snapshot'] === true ? String(record['snapshot_of']) : ref;
      if (
        ctx.faults.refuseVhdBase ||
        baseVdi['SR'] !== vdi['SR'] ||
        liveOf(baseVdi, baseRef) !== liveOf(vdi, vdiRef)
      ) {
        // XAPI diffs VHD chains: a base on another SR or chain cannot be diffed (xapi.md §10).
        failTask(ctx, taskRef, ['VDI_NOT_IN_MAP', baseRef]);
        answer(res, 500, 'cannot compute a delta from this base');
        return;
      }
      if (basePath === undefined) {
        failTask(ctx, taskRef, ['VDI_INCOMPATIBLE_TYPE', baseRef, 'base VDI is not a vhd']);
        answer(res, 500, 'base VDI is not a vhd');
        return;
      }
    }
    const encoded = await ctx.vhdEncoder({
      path,
      virtualSizeBytes: Number(vdi['virtual_size']),
      ...(basePath === undefined ? {} : { basePath }),
    });
    stream = encoded.stream;
    lengthBytes = encoded.lengthBytes;
  }
  res.writeHead(200, {
    'content-type': format === 'raw' ? 'application/octet-stream' : 'application/vhd',
    'content-disposition': `attachment; filename="${uuid}.${format}"`,
    ...(taskRef === null ? {} : { 'task-id': taskRef }),
    ...(lengthBytes === undefined ? {} : { 'content-length': String(lengthBytes) }),
    connection: 'close',
  });
  const limit = ctx.faults.truncateExportAfterBytes;
  let sentBytes = 0;
  // However the transfer ends, the producer is stopped and its files closed.
  res.once('close', () => (stream as unknown as { destroy?: () => void }).destroy?.());
  for await (const chunk of stream) {
    let buffer = chunk as Buffer;
    if (limit !== undefined && sentBytes + buffer.length > limit) {
      buffer = buffer.subarray(0, limit - sentBytes);
      res.write(buffer);
      failTask(ctx, taskRef, ['VDI_IO_ERROR', 'connection closed']);
      await new Promise((resolve) => setTimeout(resolve, 20));
      res.socket?.destroy();
      return;
    }
    sentBytes += buffer.length;
    if (!res.write(buffer)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.once('drain', done);
        res.once('close', done);
      });
    }
    if (res.destroyed) {
      // The client went away (a BAT-only read); the 'close' listener stopped the producer.
      failTask(ctx, taskRef, ['VDI_IO_ERROR', 'connection closed by the client']);
      return;
    }
  }
  res.end();
  succeedTask(ctx, taskRef);
}

async function importVdi(
  ctx: SimContext,
  taskRef: string | null,
  vdiRef: string,
  format: 'raw' | 'vhd',
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const vdi = ctx.db.get('VDI', vdiRef);
  const path = ctx.db.vdiFiles.get(vdiRef);
  const lengthHeader = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || lengthHeader === undefined) {
    failTask(ctx, taskRef, ['INTERNAL_ERROR', 'chunked encoding is not supported']);
    req.resume();
    answer(res, 400, 'Content-Length required');
    return;
  }
  const lengthBytes = Number(lengthHeader);
  if (format === 'vhd' && path !== undefined) {
    await importVhd(ctx, taskRef, vdiRef, path, req, res);
    return;
  }
  if (format !== 'raw' || path === undefined || lengthBytes > Number(vdi['virtual_size'])) {
    failTask(ctx, taskRef, ['VDI_IO_ERROR', 'cannot import this body into this VDI']);
    req.resume();
    answer(res, 500, 'import refused');
    return;
  }
  const handle = await open(path, 'r+');
  let offsetBytes = 0;
  try {
    for await (const chunk of req) {
      const buffer = chunk as Buffer;
      await handle.write(buffer, 0, buffer.length, offsetBytes);
      offsetBytes += buffer.length;
    }
  } finally {
    await handle.close();
  }
  ctx.recordWrite(vdiRef, 0, offsetBytes);
  if (offsetBytes !== lengthBytes) {
    failTask(ctx, taskRef, ['VDI_IO_ERROR', 'short body']);
    answer(res, 500, 'short body');
    return;
  }
  succeedTask(ctx, taskRef);
  answer(res, 200, '');
}

/** A dynamic VHD body written block by block into the VDI's image (XAPI's vhd import). */
async function importVhd(
  ctx: SimContext,
  taskRef: string | null,
  vdiRef: string,
  path: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    const disk = await openVhdStreamDisk(req as AsyncIterable<Buffer>);
    if (
      disk.kind !== 'full' ||
      disk.sizeBytes !== Number(ctx.db.get('VDI', vdiRef)['virtual_size'])
    ) {
      throw new Error('only a dynamic VHD of the VDI size can be imported');
    }
    for await (const block of disk.readBlocks()) {
      await handle.write(block.data, 0, block.data.length, block.index * disk.blockSizeBytes);
      ctx.recordWrite(vdiRef, block.index * disk.blockSizeBytes, block.data.length);
    }
    await disk.close();
    req.resume();
  } catch (error) {
    req.resume();
    failTask(ctx, taskRef, ['VDI_IO_ERROR', String(error)]);
    answer(res, 500, 'vhd import failed');
    return;
  } finally {
    await handle.close();
  }
  succeedTask(ctx, taskRef);
  answer(res, 200, '');
}
