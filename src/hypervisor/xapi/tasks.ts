/**
 * XAPI tasks (xapi.md §4): `Async.<Class>.<call>` returns a task ref; poll its status until it is
 * no longer pending (never by progress), then read the result (an XML-RPC value string, even over
 * JSON-RPC) or the error_info, and destroy the task.
 */
import { CoreError } from '../../core/index.ts';
import { XapiError } from './errors.ts';
import type { XapiSession } from './session.ts';
import { parseXmlRpcValue, type XmlRpcValue } from './xmlrpc-value.ts';

export interface TaskWaitOptions {
  readonly signal?: AbortSignal;
  /** First poll delay, doubled up to `maxPollIntervalMs` (defaults 25 ms and 1 s). */
  readonly pollIntervalMs?: number;
  readonly maxPollIntervalMs?: number;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') {
    throw new XapiError('XAPI_PROTOCOL', `${what} is not a string`, { details: { field: what } });
  }
  return value;
}

/** Waits until `taskRef` finishes; returns its parsed result. Does not destroy the task. */
export async function waitForTask(
  session: XapiSession,
  taskRef: string,
  options: TaskWaitOptions = {},
): Promise<XmlRpcValue> {
  let delayMs = options.pollIntervalMs ?? 25;
  const maxDelayMs = options.maxPollIntervalMs ?? 1000;
  for (;;) {
    if (options.signal?.aborted === true) {
      await session.call('task.cancel', [taskRef]).catch(() => undefined);
      throw new CoreError('CANCELLED', 'XAPI task cancelled by the caller', {
        cause: options.signal.reason,
      });
    }
    const status = asString(await session.call('task.get_status', [taskRef]), 'task.status');
    switch (status) {
      case 'pending':
      case 'cancelling':
        break;
      case 'success':
        return parseXmlRpcValue(
          asString(await session.call('task.get_result', [taskRef]), 'task.result'),
        );
      case 'failure': {
        const info = await session.call('task.get_error_info', [taskRef]);
        const [code, ...params] = Array.isArray(info) ? info.map(String) : [];
        const redacted = params.map((param) =>
          session.secrets.reduce((text, secret) => text.split(secret).join('<redacted>'), param),
        );
        throw new XapiError(
          'XAPI_TASK_FAILED',
          `XAPI task failed: ${[code ?? 'unknown', ...redacted].join(' ')}`,
          { ...(code === undefined ? {} : { xapiCode: code }), xapiParams: redacted },
        );
      }
      case 'cancelled':
        throw new XapiError('XAPI_TASK_CANCELLED', 'XAPI task was cancelled');
      default:
        throw new XapiError('XAPI_PROTOCOL', `unknown task status ${status}`);
    }
    await session.clock.sleep(delayMs, options.signal).catch(() => undefined);
    delayMs = Math.min(maxDelayMs, delayMs * 2);
  }
}

/** Destroys a task, ignoring a task already gone. */
export async function destroyTask(session: XapiSession, taskRef: string): Promise<void> {
  await session.call('task.destroy', [taskRef]).catch(() => undefined);
}

/** Runs `Async.<method>` and returns its parsed result; the task is always destroyed. */
export async function callAsync(
  session: XapiSession,
  method: string,
  params: readonly unknown[] = [],
  options: TaskWaitOptions = {},
): Promise<XmlRpcValue> {
  const taskRef = asString(await session.call(`Async.${method}`, params), 'task ref');
  try {
    return await waitForTask(session, taskRef, options);
  } finally {
    await destroyTask(session, taskRef);
  }
}

/** Creates a task for an HTTP transfer (its ref goes into the URL as task_id). */
export async function createTask(session: XapiSession, label: string): Promise<string> {
  return asString(await session.call('task.create', [label, 'vmdelta']), 'task ref');
}
