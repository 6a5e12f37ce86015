/**
 * XAPI-simulator side: the JSON-RPC methods, with XAPI's error codes (HANDLE_INVALID,
 * UUID_INVALID, SESSION_INVALID, HOST_IS_SLAVE, MESSAGE_PARAMETER_COUNT_MISMATCH, VDI_IN_USE, …),
 * generic field accessors, and `Async.*` through tasks whose result is an XML-RPC value string.
 */
import { SimApiError, newRef, type SimClass, type SimRecord } from './pool-db.ts';
import type { SimContext } from './sim-context.ts';
import { formatTaskResult, type SimValue } from './xmlrpc-format.ts';
import { createSimTask, finishSimTask, xapiDateTime } from './sim-tasks.ts';
import {
  addPurpose,
  disableCbt,
  enableCbt,
  getNbdInfo,
  listChangedBlocks,
  removePurpose,
  vdiCreate,
  vbdCreate,
  vdiDataDestroy,
  vdiDestroy,
  vmDestroy,
  vmSnapshot,
} from './vm-methods.ts';
import { vifCreate, vmCreate } from './vm-create.ts';

const CLASSES: readonly SimClass[] = [
  'pool',
  'host',
  'SR',
  'network',
  'PIF',
  'VM',
  'VBD',
  'VDI',
  'VIF',
  'task',
];

type Impl = (ctx: SimContext, params: readonly unknown[]) => unknown;

interface Method {
  /** Accepted parameter counts, session excluded. */
  readonly arity: readonly number[];
  readonly impl: Impl;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

function serialise(ctx: SimContext, record: SimRecord): SimRecord {
  if (!ctx.faults.intsAsStrings) return { ...record };
  const copy: SimRecord = {};
  for (const [key, value] of Object.entries(record)) {
    copy[key] = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
  }
  return copy;
}

const METHODS: Record<string, Method> = {
  'VM.snapshot': { arity: [2, 3], impl: vmSnapshot },
  'VM.destroy': { arity: [1], impl: vmDestroy },
  'VM.set_is_a_template': {
    arity: [2],
    impl: (ctx, [ref, value]) => void (ctx.db.get('VM', ref)['is_a_template'] = value === true),
  },
  'VDI.create': { arity: [1], impl: vdiCreate },
  'VM.create': { arity: [1], impl: vmCreate },
  'VBD.create': { arity: [1], impl: vbdCreate },
  'VIF.create': { arity: [1], impl: vifCreate },
  'VDI.destroy': { arity: [1], impl: vdiDestroy },
  'VDI.data_destroy': { arity: [1], impl: vdiDataDestroy },
  'VDI.enable_cbt': { arity: [1], impl: enableCbt },
  'VDI.disable_cbt': { arity: [1], impl: disableCbt },
  'VDI.list_changed_blocks': { arity: [2], impl: listChangedBlocks },
  'VDI.get_nbd_info': { arity: [1], impl: getNbdInfo },
  'network.add_purpose': { arity: [2], impl: addPurpose },
  'network.remove_purpose': { arity: [2], impl: removePurpose },
  'host.get_servertime': { arity: [1], impl: () => xapiDateTime(Date.now()) },
  'task.create': {
    arity: [2],
    impl: (ctx, [label]) => createSimTask(ctx, str(label)),
  },
  'task.cancel': {
    arity: [1],
    impl: (ctx, [ref]) => {
      ctx.db.get('task', ref);
      finishSimTask(ctx, str(ref), 'cancelled');
    },
  },
  'task.destroy': {
    arity: [1],
    impl: (ctx, [ref]) => {
      ctx.db.get('task', ref);
      ctx.db.table('task').delete(str(ref));
      ctx.events.add('task', 'del', str(ref), undefined);
    },
  },
  'event.from': { arity: [3], impl: eventFrom },
};

/** event.from(classes, token, timeout): events after the token, waiting up to timeout seconds. */
async function eventFrom(ctx: SimContext, [classes, token, timeout]: readonly unknown[]) {
  if (!Array.isArray(classes) || typeof token !== 'string' || typeof timeout !== 'number') {
    throw new SimApiError('EVENT_SUBSCRIPTION_PARSE_FAILURE', [JSON.stringify(classes)]);
  }
  const names = classes.map(str);
  const deadline = Date.now() + timeout * 1000;
  if (token === '') {
    // The current state of every matching object, as "add" events.
    const events = [];
    for (const [ref, record] of ctx.db.table('task')) {
      if (names.some((c) => c === '*' || c.toLowerCase() === 'task' || c === `task/${ref}`)) {
        events.push({
          id: 0,
          timestamp: '',
          class: 'task',
          operation: 'add',
          ref,
          snapshot: record,
        });
      }
    }
    return { events, valid_ref_counts: {}, token: String(ctx.events.lastId) };
  }
  if (!/^\d+$/.test(token)) throw new SimApiError('EVENT_FROM_TOKEN_PARSE_FAILURE', [token]);
  const after = Number(token);
  if (after < ctx.events.firstId - 1) throw new SimApiError('EVENTS_LOST', []);
  for (;;) {
    const events = ctx.events.matching(names, after);
    const remainingMs = deadline - Date.now();
    if (events.length > 0 || remainingMs <= 0) {
      return { events, valid_ref_counts: {}, token: String(ctx.events.lastId) };
    }
    await ctx.events.waitForNext(remainingMs);
  }
}

/** get_record, get_all_records, get_by_uuid, get_all, get_<field>, add_to_/remove_from_<map or set>. */
function generic(
  ctx: SimContext,
  cls: SimClass,
  call: string,
  params: readonly unknown[],
): Method | undefined {
  const one = (impl: Impl, arity = 1): Method => ({ arity: [arity], impl });
  if (call === 'get_all_records') {
    return one(() => {
      const all: Record<string, SimRecord> = {};
      for (const [ref, record] of ctx.db.table(cls)) all[ref] = serialise(ctx, record);
      return all;
    }, 0);
  }
  if (call === 'get_all') return one(() => [...ctx.db.table(cls).keys()], 0);
  if (call === 'get_record') return one(() => serialise(ctx, ctx.db.get(cls, params[0])));
  if (call === 'get_by_uuid') return one(() => ctx.db.byUuid(cls, params[0]));
  const getter = /^get_(.+)$/.exec(call);
  if (getter?.[1] !== undefined) {
    const field = getter[1];
    return one(() => {
      const record = ctx.db.get(cls, params[0]);
      if (!(field in record)) throw new SimApiError('MESSAGE_METHOD_UNKNOWN', [`${cls}.${call}`]);
      return serialise(ctx, { [field]: record[field] })[field];
    });
  }
  const change = /^(add_to|remove_from)_(.+)$/.exec(call);
  if (change?.[1] !== undefined && change[2] !== undefined) {
    const [, verb, field] = change;
    return {
      arity: verb === 'add_to' ? [2, 3] : [2],
      impl: (_ctx, [ref, key, value]) => {
        const record = ctx.db.get(cls, ref);
        const current = record[field];
        if (Array.isArray(current)) {
          const items = current as unknown[];
          record[field] =
            verb === 'add_to'
              ? [...new Set([...items, key])]
              : items.filter((item) => item !== key);
          return;
        }
        if (typeof current !== 'object' || current === null) {
          throw new SimApiError('MESSAGE_METHOD_UNKNOWN', [`${cls}.${call}`]);
        }
        const map = current as Record<string, unknown>;
        if (verb === 'remove_from') Reflect.deleteProperty(map, str(key));
        else if (str(key) in map)
          throw new SimApiError('MAP_DUPLICATE_KEY', [cls, field, str(ref), str(key)]);
        else map[str(key)] = str(value);
      },
    };
  }
  return undefined;
}

function lookup(ctx: SimContext, method: string, params: readonly unknown[]): Method {
  const known = METHODS[method];
  if (known !== undefined) {
    if (method === 'VM.snapshot' && ctx.faults.noIgnoreVdis) return { ...known, arity: [2] };
    return known;
  }
  const dot = method.indexOf('.');
  const cls = CLASSES.find((c) => c === method.slice(0, dot));
  const found = cls === undefined ? undefined : generic(ctx, cls, method.slice(dot + 1), params);
  if (found === undefined) throw new SimApiError('MESSAGE_METHOD_UNKNOWN', [method]);
  return found;
}

function checkArity(method: string, spec: Method, params: readonly unknown[]): void {
  if (!spec.arity.includes(params.length)) {
    throw new SimApiError('MESSAGE_PARAMETER_COUNT_MISMATCH', [
      method,
      String(Math.max(...spec.arity) + 1),
      String(params.length + 1),
    ]);
  }
}

export function checkSession(ctx: SimContext, ref: unknown): void {
  const session = typeof ref === 'string' ? ctx.sessions.get(ref) : undefined;
  const nowMs = Date.now();
  const ttl = ctx.faults.sessionTtlMs;
  if (session === undefined || (ttl !== undefined && nowMs - session.lastUsedMs > ttl)) {
    if (typeof ref === 'string') ctx.sessions.delete(ref);
    throw new SimApiError('SESSION_INVALID', [str(ref)]);
  }
  session.lastUsedMs = nowMs;
}

/** Runs one JSON-RPC call received by `host`. */
export async function handleRpc(
  ctx: SimContext,
  host: 'master' | 'member',
  method: string,
  allParams: readonly unknown[],
): Promise<unknown> {
  if (method === 'session.login_with_password') {
    if (allParams.length < 2 || allParams.length > 4) {
      throw new SimApiError('MESSAGE_PARAMETER_COUNT_MISMATCH', [
        method,
        '4',
        String(allParams.length),
      ]);
    }
    if (host === 'member') throw new SimApiError('HOST_IS_SLAVE', [ctx.masterAddress]);
    const [username, password] = allParams;
    if (username !== ctx.credentials.username || password !== ctx.credentials.password) {
      throw new SimApiError('SESSION_AUTHENTICATION_FAILED', [
        str(username),
        'Authentication failure',
      ]);
    }
    const ref = newRef();
    ctx.sessions.set(ref, { username: str(username), lastUsedMs: Date.now() });
    return ref;
  }
  if (method === 'session.logout') {
    checkSession(ctx, allParams[0]);
    ctx.sessions.delete(str(allParams[0]));
    return '';
  }
  checkSession(ctx, allParams[0]);
  const params = allParams.slice(1);
  if (method.startsWith('Async.')) {
    const inner = method.slice('Async.'.length);
    if (inner.startsWith('session.') || inner.startsWith('task.')) {
      throw new SimApiError('MESSAGE_METHOD_UNKNOWN', [method]);
    }
    const spec = lookup(ctx, inner, params);
    checkArity(method, spec, params);
    const taskRef = createSimTask(ctx, `Async.${inner}`);
    setTimeout(() => {
      Promise.resolve()
        .then(() => spec.impl(ctx, params))
        .then(
          (result) => {
            finishSimTask(ctx, taskRef, 'success', formatTaskResult(result as SimValue));
          },
          (error: unknown) => {
            const info =
              error instanceof SimApiError
                ? [error.xapiCode, ...error.xapiParams]
                : ['INTERNAL_ERROR', String(error)];
            finishSimTask(ctx, taskRef, 'failure', '', info);
          },
        );
    }, ctx.faults.asyncDelayMs);
    return taskRef;
  }
  const spec = lookup(ctx, method, params);
  checkArity(method, spec, params);
  const result = await spec.impl(ctx, params);
  return result ?? '';
}
