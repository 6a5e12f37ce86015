/** XAPI-simulator side: task records (xapi.md §2, §4). */
import type { SimContext } from './sim-context.ts';

export function createSimTask(ctx: SimContext, label: string): string {
  const ref = ctx.db.insert('task', {
    name_label: label,
    name_description: '',
    status: 'pending',
    progress: 0,
    result: '',
    error_info: [],
    created: xapiDateTime(Date.now()),
    finished: '19700101T00:00:00Z',
    resident_on: ctx.db.masterRef,
    subtask_of: 'OpaqueRef:NULL',
  });
  ctx.events.add('task', 'add', ref, ctx.db.get('task', ref));
  return ref;
}

/** Finishes a pending task (no-op on a finished or destroyed one). */
export function finishSimTask(
  ctx: SimContext,
  taskRef: string | null,
  status: 'success' | 'failure' | 'cancelled',
  result = '',
  errorInfo: readonly string[] = [],
): void {
  const task = taskRef === null ? undefined : ctx.db.table('task').get(taskRef);
  if (task === undefined || taskRef === null || task['status'] !== 'pending') return;
  task['status'] = status;
  task['progress'] = 1;
  task['result'] = result;
  task['error_info'] = [...errorInfo];
  task['finished'] = xapiDateTime(Date.now());
  ctx.events.add('task', 'mod', taskRef, task);
}

/** XAPI's datetime text form, e.g. 20240131T12:34:56Z (xapi.md §1). */
export function xapiDateTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/-/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
