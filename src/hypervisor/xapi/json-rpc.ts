/**
 * XAPI's JSON-RPC wire format (xen-api wire-protocol.md, xapi.md §1), pure. Requests are 2.0 with
 * a non-null id. Replies are accepted in both forms: 2.0 errors
 * `{"error":{"code":1,"message":"CODE","data":[params]}}` and 1.0 errors `{"error":["CODE",...]}`.
 */
import { XapiError } from './errors.ts';

export type JsonRpcOutcome =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly xapiCode: string; readonly xapiParams: readonly string[] };

export function formatJsonRpcRequest(
  method: string,
  params: readonly unknown[],
  id: number,
): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params, id });
}

function protocolError(message: string): XapiError {
  return new XapiError('XAPI_PROTOCOL', `malformed JSON-RPC reply: ${message}`);
}

function asParams(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) return [stringify(value)];
  return value.map(stringify);
}

function stringify(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/** Parses a reply body; `expectedId` must match the reply's id. */
export function parseJsonRpcResponse(body: string, expectedId: number): JsonRpcOutcome {
  let reply: unknown;
  try {
    reply = JSON.parse(body);
  } catch {
    throw protocolError('not JSON');
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) {
    throw protocolError('not an object');
  }
  const record = reply as Record<string, unknown>;
  if ('id' in record && record['id'] !== expectedId && record['id'] !== String(expectedId)) {
    throw protocolError(`id ${stringify(record['id'])} does not match ${expectedId}`);
  }
  const error = record['error'];
  if (error !== undefined && error !== null) {
    if (Array.isArray(error)) {
      const [code, ...params] = error as unknown[];
      if (typeof code !== 'string') throw protocolError('1.0 error without a code');
      return { ok: false, xapiCode: code, xapiParams: params.map(stringify) };
    }
    if (typeof error === 'object') {
      const object = error as Record<string, unknown>;
      const message = object['message'];
      if (typeof message !== 'string') throw protocolError('2.0 error without a message');
      return { ok: false, xapiCode: message, xapiParams: asParams(object['data']) };
    }
    throw protocolError('error member of unknown shape');
  }
  if (!('result' in record)) throw protocolError('neither result nor error');
  return { ok: true, result: record['result'] };
}
