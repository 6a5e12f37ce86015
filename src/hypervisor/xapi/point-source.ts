/**
 * Opening the data of one disk of a XAPI backup point (xapi.md §9, §12), in this order:
 * - delta by CBT: VDI.list_changed_blocks(base, snapshot) read over NBD (64 KiB bits, regrouped
 *   to the repository's blocks);
 * - delta by the VHD stream's BAT: `export_raw_vdi?format=vhd&base=` read up to its BAT only,
 *   the allocated blocks read over NBD;
 * - delta by the plain VHD stream (no NBD, or NBD failed);
 * and for keys: the full VHD stream's BAT + NBD, else the VHD stream, else a raw stream.
 * A purged base (cbt_metadata) has no data: without CBT or NBD the disk is read in full.
 */
import type { DiskSource } from '../../disk/index.ts';
import { BlockSet, blockCountFor, openVhdStreamDisk } from '../../disk/index.ts';
import { describeError } from '../../core/index.ts';
import { openVhdStream } from '../../vhd/index.ts';
import {
  makeFullReason,
  type ChangeTrackerInfo,
  type FullReason,
  type OpenedPointSource,
  type TransportFallback,
  type TransportInfo,
} from '../hypervisor.ts';
import { changedBlockSet, type CbtBitmap } from './cbt-bitmap.ts';
import { CBT_BLOCK_BYTES, EXPORT_RAW_VDI_PATH } from './constants.ts';
import { XapiError } from './errors.ts';
import { getNbdInfo, type XapiNbdEndpoint } from './nbd-info.ts';
import { openXapiNbdSource, type NbdHostLimiter } from './nbd-reader.ts';
import type { XapiSession } from './session.ts';
import { canRegroup, rawStreamDisk, regroupBlockSet, regroupDisk } from './stream-disks.ts';
import { exportRawVdi, type VdiExport } from './vdi-transfer.ts';

export interface DiskBase {
  readonly ref: string;
  readonly uuid: string;
  /** The base is a cbt_metadata VDI (snapshot data purged): only CBT can diff from it. */
  readonly purged: boolean;
}

/** What a point knows about one disk when its source is opened. */
export interface DiskSourcePlan {
  readonly snapshotVdiRef: string;
  readonly snapshotVdiUuid: string;
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  /** Set when a delta is wanted; the full reason otherwise. */
  readonly base: DiskBase | undefined;
  readonly plannedFullReason: FullReason | undefined;
  /** CBT between base and snapshot, or why it is unusable. */
  readonly cbt: CbtBitmap | FullReason | undefined;
  readonly preferNbd: boolean;
  readonly connections: number;
  readonly nbdAddresses: ReadonlySet<string> | undefined;
}

export interface PointSourceContext {
  readonly session: XapiSession;
  readonly limiter: NbdHostLimiter;
  readonly signal?: AbortSignal | undefined;
}

const VHD_BLOCK_BYTES = 2 * 1024 * 1024;

function streamTransport(
  session: XapiSession,
  plan: DiskSourcePlan,
  format: 'vhd' | 'raw',
  base: string | undefined,
): TransportInfo {
  const origin = session.masterOrigin;
  const query = new URLSearchParams({ vdi: plan.snapshotVdiUuid, format });
  if (base !== undefined) query.set('base', base);
  return {
    protocol: 'stream',
    format,
    tls: origin.protocol === 'https:',
    url: `${origin.origin}${EXPORT_RAW_VDI_PATH}?${query.toString()}`,
  };
}

/** Closes an export: waits for its task when the whole body was read, cancels it otherwise. */
function exportBackedDisk(disk: DiskSource, transfer: VdiExport): DiskSource {
  let finished = false;
  return {
    sizeBytes: disk.sizeBytes,
    blockSizeBytes: disk.blockSizeBytes,
    kind: disk.kind,
    blocks: disk.blocks,
    readBlocks: async function* (options) {
      yield* disk.readBlocks(options);
      finished = true;
    },
    close: async () => {
      await disk.close().catch(() => undefined);
      if (finished) await transfer.finish();
      else await transfer.abort();
    },
  };
}

/** The allocated 2 MiB blocks of a VHD export (footer, header and BAT only; then abandoned). */
async function vhdAllocatedBlocks(
  ctx: PointSourceContext,
  plan: DiskSourcePlan,
  base: string | undefined,
): Promise<BlockSet> {
  const transfer = await exportRawVdi(ctx.session, {
    vdi: plan.snapshotVdiRef,
    format: 'vhd',
    ...(base === undefined ? {} : { base }),
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
  });
  try {
    const stream = await openVhdStream(transfer.stream);
    const blocks = regroupBlockSet(
      stream.allocated,
      plan.sizeBytes,
      stream.blockSizeBytes,
      plan.blockSizeBytes,
    );
    await stream.close().catch(() => undefined);
    return blocks;
  } finally {
    await transfer.abort();
  }
}

async function nbdEndpoints(
  ctx: PointSourceContext,
  plan: DiskSourcePlan,
): Promise<{ endpoints?: XapiNbdEndpoint[]; fallback?: TransportFallback }> {
  if (!plan.preferNbd) return {};
  let endpoints: XapiNbdEndpoint[];
  try {
    endpoints = await getNbdInfo(
      ctx.session,
      plan.snapshotVdiRef,
      plan.nbdAddresses === undefined ? {} : { allowedAddresses: plan.nbdAddresses },
    );
  } catch (error) {
    return {
      fallback: {
        wanted: 'nbd',
        code: 'NBD_UNAVAILABLE',
        message: `VDI.get_nbd_info failed: ${describeError(error)}`,
      },
    };
  }
  if (endpoints.length === 0) {
    return {
      fallback: {
        wanted: 'nbd',
        code: 'NBD_UNAVAILABLE',
        message:
          'no NBD endpoint for this disk (no network with purpose nbd, or none on the backup network)',
      },
    };
  }
  return { endpoints };
}

interface Attempt {
  endpoints: XapiNbdEndpoint[] | undefined;
  fallback: TransportFallback | undefined;
}

async function tryNbd(
  ctx: PointSourceContext,
  plan: DiskSourcePlan,
  attempt: Attempt,
  kind: 'full' | 'delta',
  blocks: BlockSet,
): Promise<{ source: DiskSource; transport: TransportInfo } | undefined> {
  if (attempt.endpoints === undefined) return undefined;
  try {
    const source = await openXapiNbdSource({
      endpoints: attempt.endpoints,
      connections: plan.connections,
      limiter: ctx.limiter,
      sizeBytes: plan.sizeBytes,
      blockSizeBytes: plan.blockSizeBytes,
      kind,
      blocks,
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
    return {
      source,
      transport: {
        protocol: 'nbd',
        connections: source.connections,
        tls: true,
        uri: source.displayUri,
        exportSizeBytes: source.exportSizeBytes,
        multiConn: source.connections > 1,
      },
    };
  } catch (error) {
    attempt.endpoints = undefined;
    attempt.fallback = {
      wanted: 'nbd',
      code: 'NBD_CONNECT_FAILED',
      message: `can't connect through NBD, fall back to stream export: ${describeError(error)}`,
    };
    return undefined;
  }
}

function opened(
  found: { source: DiskSource; transport: TransportInfo },
  attempt: Attempt,
  changeTracker: ChangeTrackerInfo,
  fullReason: FullReason | undefined,
): OpenedPointSource {
  return {
    source: found.source,
    transport: found.transport,
    changeTracker,
    ...(attempt.fallback === undefined ? {} : { transportFallback: attempt.fallback }),
    ...(fullReason === undefined ? {} : { fullReason }),
  };
}

async function openFull(
  ctx: PointSourceContext,
  plan: DiskSourcePlan,
  attempt: Attempt,
  reason: FullReason | undefined,
): Promise<OpenedPointSource> {
  const tracker: ChangeTrackerInfo = { kind: 'none' };
  if (attempt.endpoints !== undefined) {
    let blocks: BlockSet;
    try {
      blocks = await vhdAllocatedBlocks(ctx, plan, undefined);
    } catch {
      blocks = BlockSet.all(blockCountFor(plan.sizeBytes, plan.blockSizeBytes));
    }
    const found = await tryNbd(ctx, plan, attempt, 'full', blocks);
    if (found !== undefined) return opened(found, attempt, tracker, reason);
  }
  if (canRegroup('full', VHD_BLOCK_BYTES, plan.blockSizeBytes)) {
    try {
      const transfer = await exportRawVdi(ctx.session, {
        vdi: plan.snapshotVdiRef,
        format: 'vhd',
        ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
      });
      const disk = await openVhdStreamDisk(transfer.stream).catch(async (error: unknown) => {
        await transfer.abort();
        throw error;
      });
      const source = exportBackedDisk(regroupDisk(disk, plan.blockSizeBytes), transfer);
      return opened(
        { source, transport: streamTransport(ctx.session, plan, 'vhd', undefined) },
        attempt,
        tracker,
        reason,
      );
    } catch (error) {
      ctx.session.logger.log('warn', 'VHD export failed, exporting raw', {
        error: describeError(error),
      });
    }
  }
  const transfer = await exportRawVdi(ctx.session, {
    vdi: plan.snapshotVdiRef,
    format: 'raw',
    ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
  });
  const raw = rawStreamDisk(
    transfer.stream as AsyncIterable<Buffer>,
    plan.sizeBytes,
    plan.blockSizeBytes,
    () => Promise.resolve(),
  );
  return opened(
    {
      source: exportBackedDisk(raw, transfer),
      transport: streamTransport(ctx.session, plan, 'raw', undefined),
    },
    attempt,
    tracker,
    reason,
  );
}

function isFullReason(value: CbtBitmap | FullReason | undefined): value is FullReason {
  return value !== undefined && 'code' in value;
}

/** Opens one disk of a point: the best delta its plan allows, or a full with its reason. */
export async function openPointSource(
  ctx: PointSourceContext,
  plan: DiskSourcePlan,
): Promise<OpenedPointSource> {
  const found = await nbdEndpoints(ctx, plan);
  const attempt: Attempt = { endpoints: found.endpoints, fallback: found.fallback };
  const base = plan.base;
  if (base === undefined) return openFull(ctx, plan, attempt, plan.plannedFullReason);

  const cbt = plan.cbt;
  if (cbt !== undefined && !isFullReason(cbt)) {
    const blocks = changedBlockSet(cbt, plan.blockSizeBytes);
    const nbd = await tryNbd(ctx, plan, attempt, 'delta', blocks);
    if (nbd !== undefined) {
      return opened(
        nbd,
        attempt,
        {
          kind: 'xapi-cbt',
          granularityBytes: CBT_BLOCK_BYTES,
          base: base.uuid,
        },
        undefined,
      );
    }
  }
  if (base.purged) {
    // Nothing but CBT + NBD can diff from a cbt_metadata VDI (xapi.md §7).
    const reason = isFullReason(cbt)
      ? cbt
      : makeFullReason('VDI_NO_CBT_METADATA', {
          base: base.uuid,
          why: attempt.fallback?.message ?? 'NBD is not used for this disk',
        });
    return openFull(ctx, plan, attempt, reason);
  }

  const tracker: ChangeTrackerInfo = { kind: 'vhd-delta-stream', base: base.uuid };
  try {
    if (attempt.endpoints !== undefined) {
      const blocks = await vhdAllocatedBlocks(ctx, plan, base.ref);
      const nbd = await tryNbd(ctx, plan, attempt, 'delta', blocks);
      if (nbd !== undefined) return opened(nbd, attempt, tracker, undefined);
    }
    if (!canRegroup('delta', VHD_BLOCK_BYTES, plan.blockSizeBytes)) {
      return await openFull(
        ctx,
        plan,
        attempt,
        makeFullReason('STREAM_FULL_ONLY', {
          vhdBlockBytes: VHD_BLOCK_BYTES,
          blockSizeBytes: plan.blockSizeBytes,
        }),
      );
    }
    const transfer = await exportRawVdi(ctx.session, {
      vdi: plan.snapshotVdiRef,
      format: 'vhd',
      base: base.ref,
      ...(ctx.signal === undefined ? {} : { signal: ctx.signal }),
    });
    const disk = await openVhdStreamDisk(transfer.stream).catch(async (error: unknown) => {
      await transfer.abort();
      throw error;
    });
    return opened(
      {
        source: exportBackedDisk(regroupDisk(disk, plan.blockSizeBytes), transfer),
        transport: streamTransport(ctx.session, plan, 'vhd', base.uuid),
      },
      attempt,
      tracker,
      undefined,
    );
  } catch (error) {
    if (!(error instanceof XapiError) || error.code !== 'XAPI_HTTP_STATUS') throw error;
    ctx.session.logger.log('warn', "can't compute delta from the base, fall back to a full", {
      base: base.uuid,
      error: describeError(error),
    });
    return openFull(
      ctx,
      plan,
      attempt,
      makeFullReason('BASE_REFUSED', {
        base: base.uuid,
        ...(error.xapiCode === undefined ? {} : { xapiCode: error.xapiCode }),
      }),
    );
  }
}
