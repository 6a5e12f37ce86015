/**
 * Removing a point's temporary objects from QEMU, in the only safe order: exports first (waiting
 * for BLOCK_EXPORT_DELETED, clients gone), then the fleecing jobs (waiting until the job is gone),
 * then the overlay nodes, then the overlay files. Each step tolerates "already gone", so the same
 * code tears down a live point and the leftovers of a crashed one. Errors are collected, not
 * thrown half-way: everything that can be removed is removed.
 */
import { unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../core/index.ts';
import { qmpErrorClass, qmpErrorDesc, QmpError } from './errors.ts';
import type { QmpClient } from './qmp-client.ts';
import { parseBlockExports, parseJobs } from './qmp-types.ts';

export interface Temporaries {
  readonly exportIds: readonly string[];
  readonly jobIds: readonly string[];
  readonly nodeNames: readonly string[];
  readonly files: readonly string[];
}

export interface TeardownOptions {
  readonly timeoutMs?: number;
}

function isNotFound(error: unknown): boolean {
  const errorClass = qmpErrorClass(error);
  if (errorClass === 'DeviceNotFound') return true;
  return /not found|no such|cannot find|does not exist/i.test(qmpErrorDesc(error));
}

export async function deleteExport(
  client: QmpClient,
  id: string,
  timeoutMs: number,
): Promise<void> {
  const exports = parseBlockExports(await client.execute('query-block-exports'));
  if (!exports.some((e) => e.id === id)) return;
  const cursor = client.eventCursor();
  try {
    await client.execute('block-export-del', { id, mode: 'hard' });
  } catch (error) {
    // Already shutting down: wait for the event all the same.
    if (!/shutting down/i.test(qmpErrorDesc(error))) {
      if (isNotFound(error)) return;
      throw error;
    }
  }
  try {
    await client.waitForEvent((e) => e.event === 'BLOCK_EXPORT_DELETED' && e.data['id'] === id, {
      afterSeq: cursor,
      timeoutMs,
      what: `BLOCK_EXPORT_DELETED ${id}`,
    });
  } catch (error) {
    const left = parseBlockExports(await client.execute('query-block-exports'));
    if (left.some((e) => e.id === id)) throw error;
  }
}

export async function cancelJob(client: QmpClient, id: string, timeoutMs: number): Promise<void> {
  const job = parseJobs(await client.execute('query-jobs')).find((j) => j.id === id);
  if (job === undefined) return;
  const cursor = client.eventCursor();
  try {
    if (job.status === 'concluded') await client.execute('job-dismiss', { id });
    else await client.execute('job-cancel', { id });
  } catch (error) {
    if (isNotFound(error)) return;
    throw error;
  }
  try {
    await client.waitForEvent(
      (e) => e.event === 'JOB_STATUS_CHANGE' && e.data['id'] === id && e.data['status'] === 'null',
      { afterSeq: cursor, timeoutMs, what: `end of job ${id}` },
    );
  } catch (error) {
    const left = parseJobs(await client.execute('query-jobs')).find((j) => j.id === id);
    if (left === undefined) return;
    if (left.status === 'concluded') {
      await client.execute('job-dismiss', { id });
      return;
    }
    throw error;
  }
}

export async function deleteNode(client: QmpClient, nodeName: string): Promise<void> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      await client.execute('blockdev-del', { 'node-name': nodeName });
      return;
    } catch (error) {
      if (isNotFound(error)) return;
      // Still in use for a moment after its job ended: retry briefly.
      if (attempt >= 20 || !(error instanceof QmpError)) throw error;
      await sleep(50);
    }
  }
}

/** Tears everything down; returns the failures (empty when all went). */
export async function teardown(
  client: QmpClient,
  temporaries: Temporaries,
  options: TeardownOptions = {},
): Promise<string[]> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const failures: string[] = [];
  const attempt = async (what: string, step: () => Promise<void>): Promise<void> => {
    try {
      await step();
    } catch (error) {
      failures.push(`${what}: ${describeError(error)}`);
    }
  };
  for (const id of temporaries.exportIds)
    await attempt(`export ${id}`, () => deleteExport(client, id, timeoutMs));
  for (const id of temporaries.jobIds)
    await attempt(`job ${id}`, () => cancelJob(client, id, timeoutMs));
  for (const nodeName of temporaries.nodeNames)
    await attempt(`node ${nodeName}`, () => deleteNode(client, nodeName));
  for (const file of temporaries.files) {
    await attempt(`file ${file}`, async () => {
      await unlink(file).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      });
    });
  }
  return failures;
}
