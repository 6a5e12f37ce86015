/**
 * The thin HTTP(S) shell under the XAPI client: one keep-alive agent per host (origin), requests
 * with a timeout and an abort signal, bodies read with a size limit. Error messages name the
 * host and path only, never the query (it carries the session id).
 */
import {
  request as httpRequest,
  type Agent,
  type IncomingMessage,
  type OutgoingHttpHeaders,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import { CoreError } from '../../core/index.ts';
import { XapiError } from './errors.ts';
import { createXapiAgent, type XapiTlsTrust } from './tls-trust.ts';

export interface XapiEndpoint {
  /** Origin of the host: protocol, hostname and port. */
  readonly origin: URL;
  readonly agent: Agent;
}

export function openXapiEndpoint(origin: URL, trust: XapiTlsTrust | undefined): XapiEndpoint {
  if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
    throw new XapiError('XAPI_PROTOCOL', `unsupported URL scheme ${origin.protocol}`, {
      details: { field: 'url' },
    });
  }
  return { origin: new URL(origin.origin), agent: createXapiAgent(origin.protocol, trust) };
}

export function closeXapiEndpoint(endpoint: XapiEndpoint): void {
  endpoint.agent.destroy();
}

/** The same scheme and port on another host (HOST_IS_SLAVE's master, a 302 target). */
export function originOnHost(origin: URL, hostname: string): URL {
  const url = new URL(origin.origin);
  url.hostname = hostname.includes(':') && !hostname.startsWith('[') ? `[${hostname}]` : hostname;
  return url;
}

export interface XapiHttpRequest {
  readonly method: 'GET' | 'POST' | 'PUT';
  /** Path and query string. */
  readonly path: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: Buffer | Readable;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
}

function describeTarget(endpoint: XapiEndpoint, path: string): string {
  return `${endpoint.origin.host}${path.split('?')[0] ?? ''}`;
}

/** Sends a request; resolves with the response once its headers arrived. */
export function sendXapiRequest(
  endpoint: XapiEndpoint,
  options: XapiHttpRequest,
): Promise<IncomingMessage> {
  const target = describeTarget(endpoint, options.path);
  return new Promise<IncomingMessage>((resolve, reject) => {
    if (options.signal?.aborted === true) {
      reject(new CoreError('CANCELLED', `request to ${target} cancelled`));
      return;
    }
    const send = endpoint.origin.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send({
      protocol: endpoint.origin.protocol,
      hostname: endpoint.origin.hostname.replace(/^\[|\]$/g, ''),
      port: endpoint.origin.port === '' ? undefined : Number(endpoint.origin.port),
      method: options.method,
      path: options.path,
      headers: options.headers,
      agent: endpoint.agent,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
    req.setTimeout(options.timeoutMs, () => {
      req.destroy(
        new XapiError('XAPI_TRANSPORT', `no answer from ${target} within ${options.timeoutMs} ms`, {
          retryable: true,
          details: { timeoutMs: options.timeoutMs },
        }),
      );
    });
    req.on('error', (error: Error) => {
      if (error instanceof XapiError) reject(error);
      else if (options.signal?.aborted === true)
        reject(new CoreError('CANCELLED', `request to ${target} cancelled`, { cause: error }));
      else
        reject(
          new XapiError('XAPI_TRANSPORT', `request to ${target} failed: ${error.message}`, {
            cause: error,
            retryable: true,
          }),
        );
    });
    req.once('response', (response) => {
      resolve(response);
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.once('error', (error) => req.destroy(error));
      body.pipe(req);
    }
  });
}

/** Reads a whole response body, failing beyond `limitBytes`. */
export async function readXapiBody(response: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let totalBytes = 0;
  try {
    for await (const chunk of response) {
      const buffer = chunk as Buffer;
      totalBytes += buffer.length;
      if (totalBytes > limitBytes) {
        response.destroy();
        throw new XapiError('XAPI_PROTOCOL', `reply body exceeds ${limitBytes} bytes`, {
          details: { limitBytes },
        });
      }
      chunks.push(buffer);
    }
  } catch (error) {
    if (error instanceof XapiError) throw error;
    throw new XapiError('XAPI_TRANSPORT', `reply body interrupted: ${(error as Error).message}`, {
      cause: error,
      retryable: true,
    });
  }
  return Buffer.concat(chunks, totalBytes);
}
