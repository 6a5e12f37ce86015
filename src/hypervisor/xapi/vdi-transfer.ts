/**
 * The VDI HTTP handlers (xapi.md §5): GET /export_raw_vdi as a checked Readable (302 followed to
 * another host with the same session — for PUT too, with a body opened again —, embedded error in a 200 body detected, Content-Length
 * honoured) and PUT /import_raw_vdi with a Content-Length. Each transfer runs under a task created
 * by us (task_id), whose result is authoritative: `finish()` waits for it and destroys it.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { EXPORT_RAW_VDI_PATH, IMPORT_RAW_VDI_PATH, MAX_HTTP_REDIRECTS } from './constants.ts';
import { XapiError } from './errors.ts';
import { ExportBodyCheck } from './export-check.ts';
import { readXapiBody, sendXapiRequest, type XapiEndpoint } from './http-client.ts';
import { redactSecrets, type XapiSession } from './session.ts';
import { createTask, destroyTask, waitForTask } from './tasks.ts';

export type VdiTransferFormat = 'raw' | 'vhd';

export interface ExportRawVdiOptions {
  /** VDI ref or uuid. */
  readonly vdi: string;
  readonly format: VdiTransferFormat;
  /** Base VDI (ref or uuid) for a differencing VHD (format vhd only). */
  readonly base?: string;
  readonly signal?: AbortSignal;
  /** Inactivity limit on the connection (default 5 min, XO's httpInactivityTimeout). */
  readonly inactivityTimeoutMs?: number;
}

export interface VdiExport {
  readonly stream: Readable;
  readonly contentLengthBytes: number | undefined;
  readonly contentType: string | undefined;
  /** Host that served the export (after redirects). */
  readonly servedBy: string;
  /** After the stream ended: waits for the task's verdict, then destroys it. */
  finish(): Promise<void>;
  /** Abandons the export: destroys the stream, cancels and destroys the task. */
  abort(): Promise<void>;
}

interface TransferRequest {
  readonly method: 'GET' | 'PUT';
  readonly query: URLSearchParams;
  readonly pathname: string;
  readonly headers?: Record<string, string>;
  readonly openBody?: () => Readable;
  readonly signal?: AbortSignal | undefined;
  readonly timeoutMs: number;
}

/** Sends the request, following 302 to other hosts (same session, same trust). */
async function sendFollowingRedirects(
  session: XapiSession,
  request: TransferRequest,
): Promise<{ response: IncomingMessage; endpoint: XapiEndpoint }> {
  let endpoint = session.masterEndpoint;
  let path = `${request.pathname}?${request.query.toString()}`;
  for (let redirects = 0; ; redirects += 1) {
    // A body is streamed once: each attempt opens its own, and a redirected one is dropped.
    const body = request.openBody?.();
    const response = await sendXapiRequest(endpoint, {
      method: request.method,
      path,
      timeoutMs: request.timeoutMs,
      signal: request.signal,
      ...(request.headers === undefined ? {} : { headers: request.headers }),
      ...(body === undefined ? {} : { body }),
    }).catch((error: unknown) => {
      body?.destroy();
      throw error;
    });
    if (response.statusCode !== 302) return { response, endpoint };
    body?.destroy();
    response.resume();
    const location = response.headers.location;
    if (location === undefined) throw new XapiError('XAPI_PROTOCOL', '302 without a Location');
    if (redirects >= MAX_HTTP_REDIRECTS) {
      throw new XapiError(
        'XAPI_TOO_MANY_REDIRECTS',
        `more than ${MAX_HTTP_REDIRECTS} HTTP redirects`,
      );
    }
    const target = new URL(location, endpoint.origin);
    // Keep the authentication: XAPI's Location repeats the query, but be sure it is there.
    if (!target.searchParams.has('session_id')) {
      target.searchParams.set('session_id', session.revealSessionRef());
    }
    session.logger.log('info', 'XAPI redirected the transfer to another host', {
      from: endpoint.origin.host,
      to: target.host,
    });
    endpoint = session.endpointFor(new URL(target.origin));
    path = `${target.pathname}${target.search}`;
  }
}

async function statusError(
  session: XapiSession,
  taskRef: string,
  response: IncomingMessage,
  what: string,
): Promise<XapiError> {
  const body = await readXapiBody(response, 64 * 1024).catch(() => Buffer.alloc(0));
  const status = await session.call('task.get_status', [taskRef]).catch(() => undefined);
  let xapiCode: string | undefined;
  let xapiParams: string[] = [];
  if (status === 'failure') {
    const info = await session.call('task.get_error_info', [taskRef]).catch(() => []);
    if (Array.isArray(info) && info.length > 0) {
      [xapiCode, ...xapiParams] = info.map((item) => redactSecrets(String(item), session.secrets));
    }
  }
  const excerpt = redactSecrets(
    body
      .subarray(0, 200)
      .toString('latin1')
      .replace(/[^\x20-\x7e]/g, '?'),
    session.secrets,
  );
  return new XapiError(
    'XAPI_HTTP_STATUS',
    `${what} answered HTTP ${response.statusCode ?? 0}${xapiCode === undefined ? '' : ` (${xapiCode})`}`,
    {
      ...(xapiCode === undefined ? {} : { xapiCode, xapiParams }),
      details: { statusCode: response.statusCode, body: excerpt },
    },
  );
}

export async function exportRawVdi(
  session: XapiSession,
  options: ExportRawVdiOptions,
): Promise<VdiExport> {
  const taskRef = await createTask(session, `vmdelta export ${options.format}`);
  const query = new URLSearchParams({
    session_id: session.revealSessionRef(),
    task_id: taskRef,
    vdi: options.vdi,
    format: options.format,
  });
  if (options.base !== undefined) query.set('base', options.base);
  let response: IncomingMessage;
  let endpoint: XapiEndpoint;
  try {
    ({ response, endpoint } = await sendFollowingRedirects(session, {
      method: 'GET',
      pathname: EXPORT_RAW_VDI_PATH,
      query,
      signal: options.signal,
      timeoutMs: options.inactivityTimeoutMs ?? 300_000,
    }));
    if (response.statusCode !== 200) {
      throw await statusError(session, taskRef, response, 'export_raw_vdi');
    }
  } catch (error) {
    await session.call('task.cancel', [taskRef]).catch(() => undefined);
    await destroyTask(session, taskRef);
    throw error;
  }
  const lengthHeader = response.headers['content-length'];
  const contentLengthBytes = lengthHeader === undefined ? undefined : Number(lengthHeader);
  if (contentLengthBytes !== undefined && !Number.isSafeInteger(contentLengthBytes)) {
    response.destroy();
    await destroyTask(session, taskRef);
    throw new XapiError('XAPI_PROTOCOL', 'export_raw_vdi sent an invalid Content-Length');
  }
  const check = new ExportBodyCheck(contentLengthBytes);
  response.once('error', (error) => {
    check.destroy(
      new XapiError(
        'XAPI_STREAM_TRUNCATED',
        `export interrupted after ${check.seenBytes} bytes: ${error.message}`,
        { cause: error, retryable: true, details: { seenBytes: check.seenBytes } },
      ),
    );
  });
  check.once('close', () => {
    if (!response.complete) response.destroy();
  });
  const stream = response.pipe(check);
  let done = false;
  return {
    stream,
    contentLengthBytes,
    contentType: response.headers['content-type'],
    servedBy: endpoint.origin.host,
    finish: async () => {
      if (done) return;
      done = true;
      try {
        await waitForTask(
          session,
          taskRef,
          options.signal === undefined ? {} : { signal: options.signal },
        );
      } finally {
        await destroyTask(session, taskRef);
      }
    },
    abort: async () => {
      if (done) return;
      done = true;
      stream.destroy();
      await session.call('task.cancel', [taskRef]).catch(() => undefined);
      await destroyTask(session, taskRef);
    },
  };
}

export interface ImportRawVdiOptions {
  /** VDI ref or uuid to overwrite. */
  readonly vdi: string;
  readonly format: VdiTransferFormat;
  /** Opens the body; called again if XAPI redirects (the first body is then discarded). */
  readonly openBody: () => Readable;
  /** Exact body length: XAPI rejects chunked uploads (xapi.md §5). */
  readonly contentLengthBytes: number;
  readonly signal?: AbortSignal;
  readonly inactivityTimeoutMs?: number;
}

/** Streams a body into a VDI and waits for the import task's verdict. */
export async function importRawVdi(
  session: XapiSession,
  options: ImportRawVdiOptions,
): Promise<void> {
  if (!Number.isSafeInteger(options.contentLengthBytes) || options.contentLengthBytes < 0) {
    throw new XapiError('XAPI_PROTOCOL', 'import_raw_vdi needs an exact Content-Length', {
      details: { field: 'contentLengthBytes' },
    });
  }
  const taskRef = await createTask(session, `vmdelta import ${options.format}`);
  try {
    const query = new URLSearchParams({
      session_id: session.revealSessionRef(),
      task_id: taskRef,
      vdi: options.vdi,
      format: options.format,
    });
    const { response } = await sendFollowingRedirects(session, {
      method: 'PUT',
      pathname: IMPORT_RAW_VDI_PATH,
      query,
      headers: {
        'content-length': String(options.contentLengthBytes),
        'content-type': 'application/octet-stream',
      },
      openBody: options.openBody,
      signal: options.signal,
      timeoutMs: options.inactivityTimeoutMs ?? 300_000,
    });
    if (response.statusCode !== 200) {
      throw await statusError(session, taskRef, response, 'import_raw_vdi');
    }
    response.resume();
    await waitForTask(
      session,
      taskRef,
      options.signal === undefined ? {} : { signal: options.signal },
    );
  } finally {
    await destroyTask(session, taskRef);
  }
}
