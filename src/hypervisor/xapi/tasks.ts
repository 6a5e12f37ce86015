/**
 * XAPI tasks (xapi.md §4): `Async.<Class>.<call>` returns a task ref; poll its status (or watch
 * it with event.from) until it is no longer pending (never by progress), then read the result (an XML-RPC value string, even over
 * JSON-RPC) or the error_info, and destroy the task.
 */
import { CoreError } from '../../core/index.ts';
import { XapiError, isXapiCode } from './errors.ts';
import { redactSecrets, type XapiSession } from './session.ts';
import { parseXmlRpcValue, type XmlRpcValue } from './xmlrpc-value.ts';

export interface TaskWaitOptions {
  readonly signal?: AbortSignal;
  /**
   * How to learn that the task finished: 'poll' task.get_status with back-off (default), or
   * 'events': block in event.from on the task (fewer calls for long tasks).
   */
  readonly watch?: 'poll' | 'events';
  /** event.from timeout in seconds (default 30.1; XAPI wants a float). */
  readonly eventTimeoutSeconds?: number;
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

/** Reads the verdict of a task that is no longer pending. */
async function taskOutcome(
  session: XapiSession,
  taskRef: string,
  status: string,
): Promise<XmlRpcValue> {
  switch (status) {
    case 'success':
      return parseXmlRpcValue(
        asString(await session.call('task.get_result', [taskRef]), 'task.result'),
      );
    case 'failure': {
      const info = await session.call('task.get_error_info', [taskRef]);
      const [code, ...params] = Array.isArray(info) ? info.map(String) : [];
      const redacted = params.map((param) => redactSecrets(param, session.secrets));
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
}

async function cancelled(
  session: XapiSession,
  taskRef: string,
  signal: AbortSignal,
): Promise<never> {
  await session.call('task.cancel', [taskRef]).catch(() => undefined);
  throw new CoreError('CANCELLED', 'XAPI task cancelled by the caller', { cause: signal.reason });
}

/** Waits until `taskRef` finishes; returns its parsed result. Does not destroy the task. */
export async function waitForTask(
  session: XapiSession,
  taskRef: string,
  options: TaskWaitOptions = {},
): Promise<XmlRpcValue> {
  if (options.watch === 'events') return waitForTaskEvents(session, taskRef, options);
  let delayMs = options.pollIntervalMs ?? 25;
  const maxDelayMs = options.maxPollIntervalMs ?? 1000;
  for (;;) {
    if (options.signal?.aborted === true) return cancelled(session, taskRef, options.signal);
    const status = asString(await session.call('task.get_status', [taskRef]), 'task.status');
    if (status !== 'pending' && status !== 'cancelling') {
      return taskOutcome(session, taskRef, status);
    }
    await session.clock.sleep(delayMs, options.signal).catch(() => undefined);
    delayMs = Math.min(maxDelayMs, delayMs * 2);
  }
}

/** event.from on `task/<ref>` until the task leaves pending (xapi.md §4). */
async function waitForTaskEvents(
  session: XapiSession,
  taskRef: string,
  options: TaskWaitOptions,
): Promise<XmlRpcValue> {
  let token = '';
  const timeoutSeconds = options.eventTimeoutSeconds ?? 30.1;
  for (;;) {
    if (options.signal?.aborted === true) return cancelled(session, taskRef, options.signal);
    let answer: unknown;
    try {
      answer = await session.call('event.from', [[`task/${taskRef}`], token, timeoutSeconds]);
    } catch (error) {
      // EVENTS_LOST: start again from the current state (as Xen Orchestra does).
      if (isXapiCode(error, 'EVENTS_LOST')) {
        token = '';
        continue;
      }
      throw error;
    }
    const batch = parseEventBatch(answer);
    token = batch.token;
    for (const event of batch.events) {
      if (event.ref !== taskRef) continue;
      if (event.operation === 'del') {
        throw new XapiError('XAPI_PROTOCOL', 'the task was destroyed while being watched');
      }
      const status = event.status;
      if (status !== undefined && status !== 'pending' && status !== 'cancelling') {
        return taskOutcome(session, taskRef, status);
      }
    }
  }
}

interface TaskEvent {
  readonly ref: string;
  readonly operation: string;
  readonly status: string | undefined;
}

function parseEventBatch(answer: unknown): { events: TaskEvent[]; token: string } {
  if (typeof answer !== 'object' || answer === null) {
    throw new XapiError('XAPI_PROTOCOL', 'event.from did not return a record');
  }
  const record = answer as { events?: unknown; token?: unknown };
  if (!Array.isArray(record.events) || typeof record.token !== 'string') {
    throw new XapiError('XAPI_PROTOCOL', 'event.from returned no events or token');
  }
  const events = (record.events as unknown[]).map((raw): TaskEvent => {
    const event = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
    const snapshot = event['snapshot'] as Record<string, unknown> | undefined;
    const status = snapshot?.['status'];
    return {
      ref: typeof event['ref'] === 'string' ? event['ref'] : '',
      operation: typeof event['operation'] === 'string' ? event['operation'] : '',
      status: typeof status === 'string' ? status : undefined,
    };
  });
  return { events, token: record.token };
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
