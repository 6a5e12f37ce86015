/**
 * XAPI-simulator side: the JSON-RPC methods, with XAPI's error codes (HANDLE_INVALID,
 * UUID_INVALID, SESSION_INVALID, HOST_IS_SLAVE, MESSAGE_PARAMETER_COUNT_MISMATCH, VDI_IN_USE, …),
 * generic field accessors, and `Async.*` through tasks whose result is an XML-RPC value string.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { encodeCbtBitmap } from './cbt-tracker.ts';
import { NULL_REF, SimApiError, newRef, type SimClass, type SimRecord } from './pool-db.ts';
import type { SimContext } from './sim-context.ts';
import { formatTaskResult, type SimValue } from './xmlrpc-format.ts';
import { createSimTask, finishSimTask, xapiDateTime } from './sim-tasks.ts';

const execFileAsync = promisify(execFile);

const CLASSES: readonly SimClass[] = [
  'pool',
  'host',
  'SR',
  'network',
  'PIF',
  'VM',
  'VBD',
  'VDI',
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

function isAttached(ctx: SimContext, vdi: SimRecord): boolean {
  return (vdi['VBDs'] as string[]).some(
    (vbd) => ctx.db.table('VBD').get(vbd)?.['currently_attached'] === true,
  );
}

function consumeInUse(ctx: SimContext, vdiRef: string, operation: string): void {
  const uuid = str(ctx.db.get('VDI', vdiRef)['uuid']);
  const remaining = ctx.faults.vdiInUse.get(uuid) ?? 0;
  if (remaining > 0) {
    ctx.faults.vdiInUse.set(uuid, remaining - 1);
    throw new SimApiError('VDI_IN_USE', [vdiRef, operation]);
  }
}

async function snapshotVdi(ctx: SimContext, vdiRef: string, nowMs: number): Promise<string> {
  const source = ctx.db.get('VDI', vdiRef);
  const snapshotRef = await ctx.db.insertVdi(
    {
      nameLabel: str(source['name_label']),
      sizeBytes: Number(source['virtual_size']),
      srUuid: str(ctx.db.get('SR', source['SR'])['uuid']),
    },
    {
      is_a_snapshot: true,
      snapshot_of: vdiRef,
      snapshot_time: xapiDateTime(nowMs),
      other_config: { ...(source['other_config'] as Record<string, string>) },
      cbt_enabled: source['cbt_enabled'],
      tags: [...(source['tags'] as string[])],
    },
  );
  const from = ctx.db.vdiFiles.get(vdiRef);
  const to = ctx.db.vdiFiles.get(snapshotRef);
  if (from === undefined || to === undefined) throw new SimApiError('VDI_MISSING', [vdiRef]);
  await execFileAsync('cp', ['--reflink=auto', '--sparse=always', from, to]);
  const position = ctx.cbt.snapshot(str(source['uuid']));
  if (position !== undefined) ctx.cbtPositions.set(snapshotRef, position);
  (source['snapshots'] as string[]).push(snapshotRef);
  return snapshotRef;
}

async function vmSnapshot(ctx: SimContext, params: readonly unknown[]): Promise<string> {
  const [vmRef, name, ignore] = params;
  const vm = ctx.db.get('VM', vmRef);
  if (
    vm['is_a_snapshot'] === true ||
    vm['is_a_template'] === true ||
    vm['is_control_domain'] === true
  ) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['VM.snapshot is not allowed on this VM']);
  }
  const ignored = new Set(Array.isArray(ignore) ? ignore.map(str) : []);
  const nowMs = Date.now();
  const snapshotRef = ctx.db.insertVm({
    name_label: str(name),
    is_a_snapshot: true,
    is_a_template: true,
    snapshot_of: vmRef,
    snapshot_time: xapiDateTime(nowMs),
    power_state: 'Halted',
    other_config: { ...(vm['other_config'] as Record<string, string>) },
  });
  for (const vbdRef of vm['VBDs'] as string[]) {
    const vbd = ctx.db.get('VBD', vbdRef);
    const common = {
      VM: snapshotRef,
      userdevice: vbd['userdevice'],
      device: vbd['device'],
      mode: vbd['mode'],
    };
    if (vbd['type'] === 'Disk' && vbd['VDI'] !== NULL_REF && !ignored.has(str(vbd['VDI']))) {
      const vdiRef = await snapshotVdi(ctx, str(vbd['VDI']), nowMs);
      ctx.db.insertVbd({ ...common, type: 'Disk', VDI: vdiRef, bootable: vbd['bootable'] });
    } else if (vbd['type'] !== 'Disk') {
      ctx.db.insertVbd({ ...common, type: vbd['type'], VDI: NULL_REF, empty: true });
    }
  }
  (vm['snapshots'] as string[]).push(snapshotRef);
  return snapshotRef;
}

async function vdiDestroy(ctx: SimContext, params: readonly unknown[]): Promise<void> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (isAttached(ctx, vdi)) throw new SimApiError('VDI_IN_USE', [vdiRef, 'destroy']);
  consumeInUse(ctx, vdiRef, 'destroy');
  await ctx.stopNbd(vdiRef);
  ctx.cbtPositions.delete(vdiRef);
  await ctx.db.removeVdi(vdiRef);
}

async function vdiDataDestroy(ctx: SimContext, params: readonly unknown[]): Promise<void> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (vdi['type'] === 'cbt_metadata') return;
  if (vdi['is_a_snapshot'] !== true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['VDI.data_destroy needs a snapshot VDI']);
  }
  if (!ctx.cbtPositions.has(vdiRef)) throw new SimApiError('VDI_NO_CBT_METADATA', [vdiRef]);
  if (isAttached(ctx, vdi)) throw new SimApiError('VDI_IN_USE', [vdiRef, 'data_destroy']);
  consumeInUse(ctx, vdiRef, 'data_destroy');
  await ctx.stopNbd(vdiRef);
  vdi['type'] = 'cbt_metadata';
  vdi['physical_utilisation'] = 0;
  const path = ctx.db.vdiFiles.get(vdiRef);
  ctx.db.vdiFiles.delete(vdiRef);
  if (path !== undefined) await execFileAsync('rm', ['-f', path]);
}

function enableCbt(ctx: SimContext, params: readonly unknown[]): void {
  const vdi = ctx.db.get('VDI', params[0]);
  if (vdi['is_a_snapshot'] === true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['CBT cannot be changed on a snapshot']);
  }
  const sr = ctx.db.get('SR', vdi['SR']);
  if (sr['type'] === 'iso') throw new SimApiError('SR_OPERATION_NOT_SUPPORTED', [str(vdi['SR'])]);
  ctx.cbt.enable(str(vdi['uuid']));
  vdi['cbt_enabled'] = true;
}

function disableCbt(ctx: SimContext, params: readonly unknown[]): void {
  const vdi = ctx.db.get('VDI', params[0]);
  if (vdi['is_a_snapshot'] === true) {
    throw new SimApiError('OPERATION_NOT_ALLOWED', ['CBT cannot be changed on a snapshot']);
  }
  ctx.cbt.disable(str(vdi['uuid']));
  vdi['cbt_enabled'] = false;
}

function listChangedBlocks(ctx: SimContext, params: readonly unknown[]): string {
  const [fromRef, toRef] = params.map(str);
  ctx.db.get('VDI', fromRef);
  const to = ctx.db.get('VDI', toRef);
  if (isAttached(ctx, to)) throw new SimApiError('VDI_IN_USE', [str(toRef), 'list_changed_blocks']);
  const from = ctx.cbtPositions.get(str(fromRef));
  const target = ctx.cbtPositions.get(str(toRef));
  const failure = (reason: string): SimApiError =>
    new SimApiError('SR_BACKEND_FAILURE_460', [
      '',
      `Failed to calculate changed blocks for given VDIs. [opterr=${reason}]`,
      '',
    ]);
  if (from === undefined || target === undefined) throw failure('CBT is not enabled on the VDIs');
  const blocks = ctx.cbt.changedBlocks(from, target);
  if (typeof blocks === 'string') throw failure(blocks);
  return encodeCbtBitmap(blocks, Number(to['virtual_size']));
}

async function getNbdInfo(ctx: SimContext, params: readonly unknown[]): Promise<unknown[]> {
  const vdiRef = str(params[0]);
  const vdi = ctx.db.get('VDI', vdiRef);
  if (vdi['type'] === 'cbt_metadata')
    throw new SimApiError('VDI_INCOMPATIBLE_TYPE', [vdiRef, 'cbt_metadata']);
  const addresses: string[] = [];
  for (const network of ctx.db.table('network').values()) {
    const purpose = network['purpose'] as string[];
    if (!purpose.includes('nbd') && !purpose.includes('insecure_nbd')) continue;
    for (const pifRef of network['PIFs'] as string[]) {
      const pif = ctx.db.get('PIF', pifRef);
      if (pif['currently_attached'] === true && pif['IP'] !== '') addresses.push(str(pif['IP']));
    }
  }
  if (addresses.length === 0) return [];
  return ctx.nbdInfo(vdiRef, addresses);
}

function addPurpose(ctx: SimContext, params: readonly unknown[]): void {
  const [networkRef, purpose] = params.map(str);
  const network = ctx.db.get('network', networkRef);
  if (purpose !== 'nbd' && purpose !== 'insecure_nbd') {
    throw new SimApiError('INVALID_VALUE', ['purpose', str(purpose)]);
  }
  const other = purpose === 'nbd' ? 'insecure_nbd' : 'nbd';
  for (const [ref, record] of ctx.db.table('network')) {
    if ((record['purpose'] as string[]).includes(other)) {
      throw new SimApiError('NETWORK_INCOMPATIBLE_PURPOSES', [purpose, other, ref]);
    }
  }
  const purposes = network['purpose'] as string[];
  if (!purposes.includes(purpose)) purposes.push(purpose);
}

function removePurpose(ctx: SimContext, params: readonly unknown[]): void {
  const network = ctx.db.get('network', params[0]);
  network['purpose'] = (network['purpose'] as string[]).filter((p) => p !== params[1]);
}

function vmDestroy(ctx: SimContext, params: readonly unknown[]): void {
  const vm = ctx.db.get('VM', params[0]);
  if (vm['power_state'] !== 'Halted') {
    throw new SimApiError('VM_BAD_POWER_STATE', [
      str(params[0]),
      'halted',
      str(vm['power_state']).toLowerCase(),
    ]);
  }
  ctx.db.removeVm(str(params[0]));
}

const METHODS: Record<string, Method> = {
  'VM.snapshot': { arity: [2, 3], impl: vmSnapshot },
  'VM.destroy': { arity: [1], impl: vmDestroy },
  'VM.set_is_a_template': {
    arity: [2],
    impl: (ctx, [ref, value]) => void (ctx.db.get('VM', ref)['is_a_template'] = value === true),
  },
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
      const task = ctx.db.get('task', ref);
      if (task['status'] === 'pending') finishSimTask(task, 'cancelled');
    },
  },
  'task.destroy': {
    arity: [1],
    impl: (ctx, [ref]) => {
      ctx.db.get('task', ref);
      ctx.db.table('task').delete(str(ref));
    },
  },
};

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
            const task = ctx.db.table('task').get(taskRef);
            if (task?.['status'] === 'pending')
              finishSimTask(task, 'success', formatTaskResult(result as SimValue));
          },
          (error: unknown) => {
            const task = ctx.db.table('task').get(taskRef);
            const info =
              error instanceof SimApiError
                ? [error.xapiCode, ...error.xapiParams]
                : ['INTERNAL_ERROR', String(error)];
            if (task !== undefined) finishSimTask(task, 'failure', '', info);
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
