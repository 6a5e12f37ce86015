/**
 * Opening one NBD connection: socket (TCP with TCP_NODELAY, or unix), handshake (with STARTTLS
 * when the URI says nbds), then an NbdClient in transmission phase. The whole opening is bounded
 * by a timeout and an abort signal.
 */
import { createConnection, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { CoreError } from '../core/index.ts';
import { NbdClient } from './client.ts';
import { DEFAULT_REQUEST_TIMEOUT_MS } from './client-options.ts';
import { NbdError } from './errors.ts';
import { runNbdHandshake } from './handshake.ts';
import { SocketInput } from './socket-input.ts';
import { attachTlsDirectReads } from './tls-direct-reads.ts';
import { loadNbdTlsMaterial, startNbdTls, type NbdTlsMaterial, type NbdTlsOptions } from './tls.ts';
import { formatNbdUri, parseNbdUri, type NbdEndpoint, type NbdTarget } from './uri.ts';

export interface OpenNbdClientOptions {
  /** An NBD URI, or an already parsed target. */
  readonly uri: string | NbdTarget;
  readonly tls?: NbdTlsOptions;
  /** Certificates already loaded (a pool loads them once for all its connections). */
  readonly tlsMaterial?: NbdTlsMaterial;
  /** Metadata contexts to select, e.g. ['base:allocation', 'qemu:dirty-bitmap:bm0']. */
  readonly metaContexts?: readonly string[];
  readonly listMetaContexts?: readonly string[];
  readonly listExports?: boolean;
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Read data straight into result buffers (plain sockets; default true). */
  readonly directReads?: boolean;
  /** Largest READ request on the wire; longer reads are split into one buffer (default 256 KiB). */
  readonly readRequestBytes?: number;
  /** Requests on the wire per connection; more wait client-side (default 32). */
  readonly maxRequestsInFlight?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

export function resolveNbdTarget(uri: string | NbdTarget): NbdTarget {
  return typeof uri === 'string' ? parseNbdUri(uri) : uri;
}

/** TLS options from the URI (tls-certificates, tls-hostname) merged under explicit options. */
export function nbdTlsOptionsFor(target: NbdTarget, tls: NbdTlsOptions | undefined): NbdTlsOptions {
  return {
    ...(target.tlsCertificatesDir === undefined
      ? {}
      : { certificatesDir: target.tlsCertificatesDir }),
    ...(target.tlsServerName === undefined ? {} : { serverName: target.tlsServerName }),
    ...tls,
  };
}

export async function loadNbdTlsFor(
  target: NbdTarget,
  tls: NbdTlsOptions | undefined,
): Promise<NbdTlsMaterial | undefined> {
  if (!target.tls) {
    if (tls !== undefined && Object.keys(tls).length > 0)
      throw new NbdError('NBD_TLS_CONFIG', 'TLS options given for a plain nbd:// URI: use nbds://');
    return undefined;
  }
  const defaultName = target.endpoint.kind === 'tcp' ? target.endpoint.host : 'localhost';
  return loadNbdTlsMaterial(nbdTlsOptionsFor(target, tls), defaultName);
}

function connectSocket(endpoint: NbdEndpoint, input: SocketInput | undefined): Promise<Socket> {
  const onread = input === undefined ? {} : { onread: input.onread };
  return new Promise((resolve, reject) => {
    const socket =
      endpoint.kind === 'unix'
        ? createConnection({ path: endpoint.socketPath, ...onread })
        : createConnection({ host: endpoint.host, port: endpoint.port, noDelay: true, ...onread });
    const onError = (error: NodeJS.ErrnoException) => {
      socket.destroy();
      reject(
        new NbdError('NBD_CONNECT', `cannot connect: ${error.message}`, {
          cause: error,
          retryable: true,
          details: { errno: error.code },
        }),
      );
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

export async function openNbdClient(options: OpenNbdClientOptions): Promise<NbdClient> {
  const target = resolveNbdTarget(options.uri);
  const material = options.tlsMaterial ?? (await loadNbdTlsFor(target, options.tls));
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let socket: Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  let tlsReads: SocketInput | undefined;
  const opening = (async () => {
    // Plain sockets read through SocketInput from the start; TLS sockets once their handshake is over.
    const input =
      material === undefined && options.directReads !== false ? new SocketInput() : undefined;
    socket = await connectSocket(target.endpoint, input);
    const result = await runNbdHandshake(
      socket,
      {
        exportName: target.exportName,
        ...(material === undefined
          ? {}
          : {
              startTls: async (plain: Socket) => {
                const secure = await startNbdTls(plain, material);
                socket = secure;
                return secure;
              },
            }),
        ...(options.metaContexts === undefined ? {} : { metaContexts: options.metaContexts }),
        ...(options.listMetaContexts === undefined
          ? {}
          : { listMetaContexts: options.listMetaContexts }),
        ...(options.listExports === undefined ? {} : { listExports: options.listExports }),
      },
      input,
    );
    // TLS: after the handshake, decrypted records go straight to the client's buffers too.
    const tlsInput =
      material !== undefined &&
      options.directReads !== false &&
      result.socket instanceof TLSSocket &&
      attachTlsDirectReads(result.socket, (tlsReads ??= new SocketInput()))
        ? tlsReads
        : undefined;
    return new NbdClient(
      result.socket,
      result.info,
      result.leftover,
      options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      input ?? tlsInput,
      options.readRequestBytes,
      options.maxRequestsInFlight,
    );
  })();
  const guard = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(
        new NbdError(
          'NBD_TIMEOUT',
          `NBD connection to ${formatNbdUri(target)} not ready within ${timeoutMs} ms`,
          {
            retryable: true,
          },
        ),
      );
    }, timeoutMs);
    if (options.signal !== undefined) {
      onAbort = () => reject(new CoreError('CANCELLED', 'NBD connection cancelled'));
      if (options.signal.aborted) onAbort();
      else options.signal.addEventListener('abort', onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([opening, guard]);
  } catch (error) {
    socket?.destroy();
    opening.then((client) => client.destroy()).catch(() => undefined);
    throw error;
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
  }
}
