/**
 * Leftovers of a crashed or half-torn-down run of the same scope, found by name at the start of
 * the next point: exports, jobs and overlay nodes named `vmd-<tag>-…`, overlay files in the
 * machine's scratch folder; then, per disk, bitmaps of the scope other than the previous
 * reference are folded back into it (one transaction: enable, merge, remove), so the reference
 * covers every change made since it, including those recorded while the crashed point was open.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { HypervisorError } from '../errors.ts';
import { isScopeBitmap, isScopeTemp } from './names.ts';
import type { QmpClient } from './qmp-client.ts';
import { parseBlockExports, parseBlockNodes, parseJobs } from './qmp-types.ts';
import { teardown } from './teardown.ts';
import type { QemuDisk } from './discovery.ts';

export async function cleanupTemporaries(
  client: QmpClient,
  scope: string,
  scratchDir: string,
  timeoutMs?: number,
): Promise<string[]> {
  const exportIds = parseBlockExports(await client.execute('query-block-exports'))
    .map((e) => e.id)
    .filter((id) => isScopeTemp(id, scope));
  const jobIds = parseJobs(await client.execute('query-jobs'))
    .map((j) => j.id)
    .filter((id) => isScopeTemp(id, scope));
  const nodeNames = parseBlockNodes(await client.execute('query-named-block-nodes', { flat: true }))
    .map((n) => n.nodeName)
    .filter((name) => isScopeTemp(name, scope));
  const files = (await readdir(scratchDir).catch(() => [] as string[]))
    .filter((name) => isScopeTemp(name, scope) && name.endsWith('.qcow2'))
    .map((name) => join(scratchDir, name));
  const found = [...exportIds, ...jobIds, ...nodeNames, ...files];
  if (found.length === 0) return [];
  const failures = await teardown(
    client,
    { exportIds, jobIds, nodeNames, files },
    timeoutMs === undefined ? {} : { timeoutMs },
  );
  if (failures.length > 0) {
    throw new HypervisorError(
      'HYPERVISOR_TEARDOWN_FAILED',
      `leftovers of a previous run could not be removed: ${failures.join('; ')}`,
      { details: { failures: failures.join('; ') } },
    );
  }
  return found;
}

/** Transaction actions folding `strays` into `base` (enabled first, so no write is missed). */
export function foldActions(
  nodeName: string,
  baseName: string,
  baseRecording: boolean,
  strays: readonly string[],
): Record<string, unknown>[] {
  const actions: Record<string, unknown>[] = [];
  if (!baseRecording) {
    actions.push({
      type: 'block-dirty-bitmap-enable',
      data: { node: nodeName, name: baseName },
    });
  }
  if (strays.length > 0) {
    actions.push({
      type: 'block-dirty-bitmap-merge',
      data: { node: nodeName, target: baseName, bitmaps: [...strays] },
    });
  }
  for (const stray of strays) {
    actions.push({ type: 'block-dirty-bitmap-remove', data: { node: nodeName, name: stray } });
  }
  return actions;
}

/**
 * Folds the scope's stray bitmaps into each disk's previous bitmap (when that one exists and is
 * consistent). Returns the names folded.
 */
export async function foldStrayBitmaps(
  client: QmpClient,
  scope: string,
  disks: readonly { disk: QemuDisk; baseName: string | undefined }[],
): Promise<string[]> {
  const actions: Record<string, unknown>[] = [];
  const folded: string[] = [];
  for (const { disk, baseName } of disks) {
    if (baseName === undefined) continue;
    const base = disk.bitmaps.find((b) => b.name === baseName);
    if (base === undefined || base.inconsistent) continue;
    const strays = disk.bitmaps.filter(
      (b) => b.name !== baseName && isScopeBitmap(b.name, scope) && !b.inconsistent,
    );
    if (strays.length === 0 && base.recording) continue;
    // A frozen base without strays was not frozen by us: leave it, the plan says why.
    if (strays.length === 0) continue;
    actions.push(
      ...foldActions(
        disk.nodeName,
        baseName,
        base.recording,
        strays.map((s) => s.name),
      ),
    );
    folded.push(...strays.map((s) => `${disk.id}:${s.name}`));
  }
  if (actions.length > 0) await client.execute('transaction', { actions });
  return folded;
}
