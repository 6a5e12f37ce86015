/** XAPI-simulator side: task records (xapi.md §2, §4). */
import type { SimRecord } from './pool-db.ts';
import type { SimContext } from './sim-context.ts';

export function createSimTask(ctx: SimContext, label: string): string {
  return ctx.db.insert('task', {
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
}

export function finishSimTask(
  task: SimRecord,
  status: 'success' | 'failure' | 'cancelled',
  result = '',
  errorInfo: readonly string[] = [],
): void {
  task['status'] = status;
  task['progress'] = 1;
  task['result'] = result;
  task['error_info'] = [...errorInfo];
  task['finished'] = xapiDateTime(Date.now());
}

/** XAPI's datetime text form, e.g. 20240131T12:34:56Z (xapi.md §1). */
export function xapiDateTime(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/-/g, '')
    .replace(/\.\d+Z$/, 'Z');
}
