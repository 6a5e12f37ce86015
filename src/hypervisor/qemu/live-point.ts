/**
 * A backup point of a running QEMU (qemu-system or qemu-storage-daemon), per qemu.md §5 and §8:
 * 1. overlays: an empty qcow2 per disk in the scratch folder, added with the disk as backing;
 * 2. ONE transaction for all disks: add the new bitmap, disable (freeze) the previous one, start
 *    `blockdev-backup sync=none` into the overlay (copy-before-write keeps the old data);
 * 3. a read-only NBD export of each overlay carrying the frozen bitmap.
 * Commit: teardown, then remove the previous bitmaps (and any other of the scope but the new).
 * Abort: teardown, then fold the new bitmap back into the previous one (enable, merge, remove):
 * the previous reference stays valid and covers every change.
 */
import { execFile } from 'node:child_process';
import { mkdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describeError, KiB, type Logger } from '../../core/index.ts';
import { HypervisorError } from '../errors.ts';
import type {
  BackupPoint,
  BackupPointState,
  DiskInfo,
  DiskPointRequest,
  DiskReference,
  FullReason,
  OpenedPointSource,
  OpenPointSourceOptions,
  PointDisk,
  PointNotice,
} from '../hypervisor.ts';
import type { OpenNbdDisk } from '../open-nbd-disk.ts';
import type { QemuDisk } from './discovery.ts';
import { bitmapName, isScopeBitmap, newPointId, tempName } from './names.ts';
import { ensureNbdServer, releaseNbdServer, type QemuNbdServerConfig } from './nbd-server.ts';
import type { DiskPlan } from './plan.ts';
import type { QmpClient } from './qmp-client.ts';
import { parseBlockNodes } from './qmp-types.ts';
import { teardown, type Temporaries } from './teardown.ts';

const execFileAsync = promisify(execFile);

/** Granularity of the bitmaps we create: QEMU's qcow2 default, and XAPI CBT's unit. */
export const bitmapGranularityBytes = 64 * KiB;

export interface LivePointContext<TTls = unknown> {
  /** The connection the point is taken on. */
  readonly client: QmpClient;
  /** A connected client later on (commit, abort): reconnects if the first connection was lost. */
  readonly reconnect: () => Promise<QmpClient>;
  readonly machineId: string;
  readonly scope: string;
  readonly scratchDir: string;
  readonly nbdServer: QemuNbdServerConfig;
  readonly openDisk: OpenNbdDisk<TTls>;
  readonly clientTls?: TTls;
  readonly qemuImg: string;
  readonly logger: Logger;
  readonly timeoutMs: number;
  readonly blockSizeBytes: number;
  readonly connections?: number;
  readonly now: () => number;
  /** Recoveries done before the point (leftovers removed, references folded). */
  readonly notices: readonly PointNotice[];
  /** Called once the point is committed or aborted (releases the machine lock). */
  readonly onClose: () => void;
}

export interface LiveDiskPlan {
  readonly disk: QemuDisk;
  readonly info: DiskInfo;
  readonly request: DiskPointRequest;
  readonly plan: DiskPlan;
}

export function qemuDiskInfo(disk: QemuDisk): DiskInfo {
  return {
    id: disk.id,
    label: disk.id,
    sizeBytes: disk.sizeBytes,
    identity: disk.filename,
    changeTracker: 'qemu-dirty-bitmap',
    changeTrackerGranularityBytes: bitmapGranularityBytes,
    format: disk.format,
  };
}

export async function startLivePoint<TTls>(
  context: LivePointContext<TTls>,
  plans: readonly LiveDiskPlan[],
): Promise<BackupPoint> {
  const { client, scope } = context;
  const pointId = newPointId();
  const createdAtMs = context.now();
  const newBitmap = bitmapName(scope, pointId);
  await mkdir(context.scratchDir, { recursive: true });
  const items = plans.map((plan, index) => ({
    ...plan,
    overlayNode: tempName(scope, pointId, 'o', index),
    jobId: tempName(scope, pointId, 'j', index),
    exportId: tempName(scope, pointId, 'e', index),
    overlayFile: join(context.scratchDir, `${tempName(scope, pointId, 'o', index)}.qcow2`),
  }));
  const temporaries: Temporaries = {
    exportIds: items.map((i) => i.exportId),
    jobIds: items.map((i) => i.jobId),
    nodeNames: items.map((i) => i.overlayNode),
    files: items.map((i) => i.overlayFile),
  };
  let transactionDone = false;
  try {
    for (const item of items) {
      await execFileAsync(context.qemuImg, [
        'create',
        '-q',
        '-f',
        'qcow2',
        item.overlayFile,
        String(item.disk.sizeBytes),
      ]).catch((error: unknown) => {
        throw new HypervisorError(
          'HYPERVISOR_TOOL_FAILED',
          `qemu-img create ${item.overlayFile} failed`,
          {
            cause: error,
          },
        );
      });
      await client.execute('blockdev-add', {
        driver: 'qcow2',
        'node-name': item.overlayNode,
        file: { driver: 'file', filename: item.overlayFile },
        backing: item.disk.nodeName,
      });
    }
    const actions: Record<string, unknown>[] = [];
    for (const item of items) {
      actions.push({
        type: 'block-dirty-bitmap-add',
        data: {
          node: item.disk.nodeName,
          name: newBitmap,
          persistent: item.disk.persistentBitmaps,
          granularity: bitmapGranularityBytes,
        },
      });
      if (item.plan.kind === 'delta') {
        actions.push({
          type: 'block-dirty-bitmap-disable',
          data: { node: item.disk.nodeName, name: item.plan.base.name },
        });
      }
      actions.push({
        type: 'blockdev-backup',
        data: {
          'job-id': item.jobId,
          device: item.disk.nodeName,
          target: item.overlayNode,
          sync: 'none',
        },
      });
    }
    await client.execute('transaction', { actions });
    transactionDone = true;
    context.logger.log('info', 'backup point taken', {
      machineId: context.machineId,
      pointId,
      disks: items.length,
    });
    const server = await ensureNbdServer(client, context.nbdServer);
    for (const item of items) {
      await client.execute('block-export-add', {
        type: 'nbd',
        id: item.exportId,
        'node-name': item.overlayNode,
        name: item.exportId,
        writable: false,
        ...(item.plan.kind === 'delta'
          ? { bitmaps: [{ node: item.disk.nodeName, name: item.plan.base.name }] }
          : {}),
      });
    }
    let state: BackupPointState = 'open';
    const finish = async (next: 'committed' | 'aborted'): Promise<void> => {
      if (state !== 'open') {
        throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is ${state}`);
      }
      state = next;
      try {
        const failures: string[] = [];
        // Objects are found by name, so a new connection tears down as well as the first one.
        const current = await context.reconnect().catch((error: unknown) => {
          failures.push(`QMP: ${describeError(error)}`);
          return undefined;
        });
        if (current !== undefined) {
          failures.push(
            ...(await teardown(current, temporaries, { timeoutMs: context.timeoutMs })),
          );
          await releaseNbdServer(current, server, context.nbdServer).catch((error: unknown) =>
            failures.push(`nbd server: ${describeError(error)}`),
          );
          try {
            const actions =
              next === 'committed'
                ? await commitActions(current, items, newBitmap, scope)
                : abortActions(items, newBitmap);
            if (actions.length > 0) await current.execute('transaction', { actions });
          } catch (error) {
            failures.push(`bitmaps: ${describeError(error)}`);
          }
        }
        if (failures.length > 0) {
          throw new HypervisorError(
            'HYPERVISOR_TEARDOWN_FAILED',
            `point ${pointId} ${next} with leftovers (the next run removes them): ${failures.join('; ')}`,
            { retryable: true, details: { pointId, failures: failures.join('; ') } },
          );
        }
        context.logger.log('info', `backup point ${next}`, {
          machineId: context.machineId,
          pointId,
        });
      } finally {
        context.onClose();
      }
    };
    const disks: PointDisk[] = items.map((item) => {
      const reference: DiskReference = {
        kind: 'qemu',
        machineId: context.machineId,
        diskId: item.disk.id,
        diskIdentity: item.disk.filename,
        sizeBytes: item.disk.sizeBytes,
        token: newBitmap,
        createdAtMs,
        attributes: {
          nodeName: item.disk.nodeName,
          granularityBytes: String(bitmapGranularityBytes),
          persistent: String(item.disk.persistentBitmaps),
        },
      };
      const fullReason: FullReason | undefined =
        item.plan.kind === 'full' ? item.plan.reason : undefined;
      const base = item.plan.kind === 'delta' ? item.plan.base.name : undefined;
      return {
        disk: item.info,
        plannedKind: base === undefined ? 'full' : 'delta',
        ...(fullReason === undefined ? {} : { plannedFullReason: fullReason }),
        ...(item.request.previous === undefined ? {} : { previous: item.request.previous }),
        reference,
        openSource: async (options: OpenPointSourceOptions = {}): Promise<OpenedPointSource> => {
          if (state !== 'open') {
            throw new HypervisorError('HYPERVISOR_POINT_CLOSED', `point ${pointId} is ${state}`);
          }
          const connections = options.connections ?? context.connections;
          const signal = options.signal;
          const source = await context.openDisk({
            uri: server.uriFor(item.exportId),
            blockSizeBytes: context.blockSizeBytes,
            mode: base === undefined ? { kind: 'full' } : { kind: 'delta', dirtyBitmap: base },
            ...(connections === undefined ? {} : { connections }),
            ...(context.clientTls === undefined ? {} : { tls: context.clientTls }),
            ...(signal === undefined ? {} : { signal }),
          });
          return {
            source,
            transport: source.transport,
            changeTracker: {
              kind: 'qemu-dirty-bitmap',
              granularityBytes:
                item.plan.kind === 'delta'
                  ? item.plan.base.granularityBytes
                  : bitmapGranularityBytes,
              ...(base === undefined ? {} : { base }),
            },
            ...(fullReason === undefined ? {} : { fullReason }),
          };
        },
      };
    });
    return {
      machineId: context.machineId,
      pointId,
      createdAtMs,
      disks,
      notices: context.notices,
      get state() {
        return state;
      },
      commit: () => finish('committed'),
      abort: () => finish('aborted'),
    };
  } catch (error) {
    // Undo what was done: temporaries, then the bitmaps if the transaction went through.
    const failures = await teardown(client, temporaries, { timeoutMs: context.timeoutMs });
    if (transactionDone) {
      await client
        .execute('transaction', { actions: abortActions(items, newBitmap) })
        .catch((undoError: unknown) => failures.push(describeError(undoError)));
    } else {
      for (const file of temporaries.files) await unlink(file).catch(() => undefined);
    }
    if (failures.length > 0) {
      context.logger.log('warn', 'backup point start failed and left objects behind', {
        failures: failures.join('; '),
      });
    }
    context.onClose();
    throw error;
  }
}

interface ItemBitmaps {
  readonly disk: QemuDisk;
  readonly plan: DiskPlan;
}

/** Abort: fold the new bitmap into the frozen previous one, or just drop it. */
function abortActions(items: readonly ItemBitmaps[], newBitmap: string): Record<string, unknown>[] {
  const actions: Record<string, unknown>[] = [];
  for (const item of items) {
    const node = item.disk.nodeName;
    if (item.plan.kind === 'delta') {
      const base = item.plan.base.name;
      actions.push(
        { type: 'block-dirty-bitmap-enable', data: { node, name: base } },
        { type: 'block-dirty-bitmap-merge', data: { node, target: base, bitmaps: [newBitmap] } },
      );
    }
    actions.push({ type: 'block-dirty-bitmap-remove', data: { node, name: newBitmap } });
  }
  return actions;
}

/** Commit: remove every bitmap of the scope except the new one (the previous and any stray). */
async function commitActions(
  client: QmpClient,
  items: readonly ItemBitmaps[],
  newBitmap: string,
  scope: string,
): Promise<Record<string, unknown>[]> {
  const nodes = parseBlockNodes(await client.execute('query-named-block-nodes', { flat: true }));
  const actions: Record<string, unknown>[] = [];
  for (const item of items) {
    const node = nodes.find((n) => n.nodeName === item.disk.nodeName);
    for (const bitmap of node?.bitmaps ?? []) {
      if (bitmap.name !== newBitmap && isScopeBitmap(bitmap.name, scope)) {
        actions.push({
          type: 'block-dirty-bitmap-remove',
          data: { node: item.disk.nodeName, name: bitmap.name },
        });
      }
    }
  }
  return actions;
}
