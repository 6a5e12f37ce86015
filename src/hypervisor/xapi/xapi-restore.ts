/**
 * Restores into XAPI (xapi.md §5): a restore point (a full DiskSource) becomes a new VDI on an SR,
 * imported as a dynamic VHD whose exact length comes from planVhd (XAPI refuses chunked uploads),
 * or a raw image over an existing disk of a halted VM. A machine restore creates a halted VM from
 * the saved description, attaches the restored disks in order and recreates its VIFs. A failed
 * import destroys the VDI it created; a 302 on the import re-reads the source (reopenSource).
 */
import { Readable } from 'node:stream';
import { blockCountFor, blockLengthBytes, zeroBlock, type DiskSource } from '../../disk/index.ts';
import { MAX_WRITE_SIZE_BYTES, VHD_SECTOR_BYTES, writeVhd } from '../../vhd/index.ts';
import { HypervisorError } from '../errors.ts';
import type {
  DiskRestoreTarget,
  MachineRestoreRequest,
  RestoreOptions,
  RestoreWarning,
  RestoredDisk,
  RestoredMachine,
} from '../hypervisor.ts';
import { IMPORT_RAW_VDI_PATH } from './constants.ts';
import { getVmRecord, listVmDisks } from './inventory.ts';
import type { XapiSession } from './session.ts';
import { destroyVdi } from './snapshots.ts';
import { importRawVdi } from './vdi-transfer.ts';
import { createVdi } from './vm-operations.ts';
import { restoreVifs } from './vif-restore.ts';
import { formatVmCreateRecord } from './vm-metadata.ts';

/** Every byte of a full source, holes as zeros, in order (a raw import body). */
async function* rawBytes(
  source: DiskSource,
  signal: AbortSignal | undefined,
): AsyncGenerator<Buffer> {
  const count = blockCountFor(source.sizeBytes, source.blockSizeBytes);
  let next = 0;
  for await (const block of source.readBlocks(signal === undefined ? {} : { signal })) {
    for (; next < block.index; next += 1)
      yield zeroBlock(blockLengthBytes(next, source.sizeBytes, source.blockSizeBytes));
    yield block.data;
    next = block.index + 1;
  }
  for (; next < count; next += 1)
    yield zeroBlock(blockLengthBytes(next, source.sizeBytes, source.blockSizeBytes));
}

function vhdFits(source: DiskSource): boolean {
  return source.sizeBytes % VHD_SECTOR_BYTES === 0 && source.sizeBytes <= MAX_WRITE_SIZE_BYTES;
}

/**
 * The import body of a full source, opened again from `reopenSource` when XAPI redirects the
 * import (302) after the first body started: a source is read once, a restore point can be
 * opened again. The reopened sources are closed by `close()`.
 */
function importBodies(
  source: DiskSource,
  format: 'vhd' | 'raw',
  options: RestoreOptions,
): { lengthBytes: number; open: () => Readable; close: () => Promise<void> } {
  const signal = options.signal;
  const writeOptions = signal === undefined ? {} : { signal };
  const lengthOf = (disk: DiskSource): number =>
    format === 'vhd' ? writeVhd(disk, writeOptions).lengthBytes : disk.sizeBytes;
  const bodyOf = (disk: DiskSource): AsyncIterable<Buffer> =>
    format === 'vhd' ? writeVhd(disk, writeOptions) : rawBytes(disk, signal);
  const lengthBytes = lengthOf(source);
  const reopened: DiskSource[] = [];
  let opens = 0;
  return {
    lengthBytes,
    open: () => {
      opens += 1;
      if (opens === 1) return Readable.from(bodyOf(source), { objectMode: false });
      const reopen = options.reopenSource;
      if (reopen === undefined) {
        throw new HypervisorError(
          'HYPERVISOR_INVALID_REQUEST',
          'XAPI redirected the import and the restore source cannot be read again (no reopenSource)',
          { details: { field: 'reopenSource' } },
        );
      }
      return Readable.from(
        (async function* () {
          const again = await reopen();
          reopened.push(again);
          const againLength = lengthOf(again);
          if (again.kind !== 'full' || againLength !== lengthBytes) {
            throw new HypervisorError(
              'HYPERVISOR_SIZE_MISMATCH',
              'the reopened restore source differs from the first one',
              { details: { sizeBytes: lengthBytes, sourceSizeBytes: againLength } },
            );
          }
          yield* bodyOf(again);
        })(),
        { objectMode: false },
      );
    },
    close: async () => {
      for (const disk of reopened.splice(0)) await disk.close().catch(() => undefined);
    },
  };
}

async function importInto(
  session: XapiSession,
  vdiRef: string,
  source: DiskSource,
  format: 'vhd' | 'raw',
  options: RestoreOptions,
): Promise<void> {
  const bodies = importBodies(source, format, options);
  try {
    await importRawVdi(session, {
      vdi: vdiRef,
      format,
      contentLengthBytes: bodies.lengthBytes,
      openBody: bodies.open,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } finally {
    await bodies.close();
  }
}

function transportOf(session: XapiSession, format: 'vhd' | 'raw', vdiUuid: string) {
  const origin = session.masterOrigin;
  return {
    protocol: 'stream' as const,
    format,
    tls: origin.protocol === 'https:',
    url: `${origin.origin}${IMPORT_RAW_VDI_PATH}?vdi=${vdiUuid}&format=${format}`,
  };
}

export async function restoreXapiDisk(
  session: XapiSession,
  source: DiskSource,
  target: DiskRestoreTarget,
  options: RestoreOptions = {},
  userdevice?: string,
): Promise<RestoredDisk> {
  if (source.kind !== 'full') {
    throw new HypervisorError('HYPERVISOR_INVALID_REQUEST', 'a restore needs a full source');
  }
  if (target.kind === 'image-file') {
    throw new HypervisorError(
      'HYPERVISOR_UNSUPPORTED_TARGET',
      'XAPI restores into VDIs (new-disk or machine-disk), not image files',
      { details: { target: target.kind } },
    );
  }
  if (target.kind === 'machine-disk') {
    const vmRef = String(await session.call('VM.get_by_uuid', [target.machineId]));
    const vm = await getVmRecord(session, vmRef);
    if (vm.power_state !== 'Halted') {
      throw new HypervisorError(
        'HYPERVISOR_MACHINE_RUNNING',
        `VM ${target.machineId} is not halted`,
        {
          details: { machineId: target.machineId },
        },
      );
    }
    const disk = (await listVmDisks(session, vm)).find((d) => d.vbd.userdevice === target.diskId);
    if (disk === undefined) {
      throw new HypervisorError('HYPERVISOR_DISK_NOT_FOUND', `no disk ${target.diskId}`, {
        details: { diskId: target.diskId },
      });
    }
    if (disk.vdi.virtual_size !== source.sizeBytes) {
      throw new HypervisorError(
        'HYPERVISOR_SIZE_MISMATCH',
        'the disk and the backup differ in size',
        {
          details: { sizeBytes: disk.vdi.virtual_size, sourceSizeBytes: source.sizeBytes },
        },
      );
    }
    await importInto(session, disk.vdiRef, source, 'raw', options);
    return {
      target,
      location: disk.vdi.uuid,
      sizeBytes: source.sizeBytes,
      writtenBlocks: source.blocks.count,
      transport: transportOf(session, 'raw', disk.vdi.uuid),
    };
  }
  const srRef = String(await session.call('SR.get_by_uuid', [target.storageId]));
  const vdiRef = await createVdi(session, {
    srRef,
    nameLabel: target.label,
    virtualSizeBytes: source.sizeBytes,
    nameDescription: 'restored by vmdelta',
  });
  const vdiUuid = String(await session.call('VDI.get_uuid', [vdiRef]));
  const format = vhdFits(source) ? 'vhd' : 'raw';
  try {
    await importInto(session, vdiRef, source, format, options);
    if (target.machineId !== undefined) {
      const vmRef = String(await session.call('VM.get_by_uuid', [target.machineId]));
      const vm = await getVmRecord(session, vmRef);
      const used = new Set((await listVmDisks(session, vm)).map((d) => d.vbd.userdevice));
      let position = Number(userdevice ?? 0);
      while (userdevice === undefined && used.has(String(position))) position += 1;
      await session.call('VBD.create', [
        {
          VM: vmRef,
          VDI: vdiRef,
          userdevice: String(position),
          bootable: used.size === 0, // the machine's first disk
          mode: 'RW',
          type: 'Disk',
          empty: false,
          other_config: {},
          qos_algorithm_type: '',
          qos_algorithm_params: {},
        },
      ]);
    }
  } catch (error) {
    await destroyVdi(session, vdiRef).catch(() => undefined);
    throw error;
  }
  return {
    target,
    location: vdiUuid,
    sizeBytes: source.sizeBytes,
    writtenBlocks: source.blocks.count,
    transport: transportOf(session, format, vdiUuid),
  };
}

/**
 * A new halted VM created from the saved description (vm-metadata.ts; defaults without one), each
 * disk restored as a new VDI attached in request order, then one VIF per saved interface
 * (vif-restore.ts: a missing network is a warning, never a failure). A failure before the VIFs
 * removes the VM and the VDIs created so far.
 */
export async function restoreXapiMachine(
  session: XapiSession,
  request: MachineRestoreRequest,
): Promise<RestoredMachine> {
  const machine = request.machine;
  const signal = request.signal === undefined ? {} : { signal: request.signal };
  if (machine === undefined) {
    const disks: RestoredDisk[] = [];
    for (const entry of request.disks) {
      disks.push(await restoreXapiDisk(session, entry.source, entry.target, optionsOf(entry)));
    }
    return { disks };
  }
  const warnings: RestoreWarning[] = [];
  if (machine.metadata === undefined) {
    warnings.push({
      code: 'METADATA_MISSING',
      message: 'no saved machine description: default memory, vCPUs and boot, no VIF',
    });
  }
  const vmRef = String(
    await session.call('VM.create', [formatVmCreateRecord(machine.label, machine.metadata)]),
  );
  const machineId = String(await session.call('VM.get_uuid', [vmRef]));
  const disks: RestoredDisk[] = [];
  try {
    for (const [position, entry] of request.disks.entries()) {
      const target =
        entry.target.kind === 'new-disk' ? { ...entry.target, machineId } : entry.target;
      disks.push(
        await restoreXapiDisk(
          session,
          entry.source,
          target,
          optionsOf(entry),
          positionOf(entry.target, position),
        ),
      );
    }
  } catch (error) {
    await removeRestoredVm(session, vmRef, disks);
    throw error;
  }
  const vifs = await restoreVifs(session, vmRef, machine.metadata?.vifs ?? [], {
    ...(machine.defaultNetwork === undefined ? {} : { defaultNetwork: machine.defaultNetwork }),
  });
  warnings.push(...vifs.warnings);
  return { machineId, disks, nics: vifs.nics, warnings };

  function optionsOf(entry: MachineRestoreRequest['disks'][number]): RestoreOptions {
    return {
      ...signal,
      ...(entry.reopenSource === undefined ? {} : { reopenSource: entry.reopenSource }),
    };
  }
}

/** The saved position (userdevice) of a disk when it is a number, else its rank in the request. */
function positionOf(target: DiskRestoreTarget, rank: number): string {
  const saved = target.kind === 'new-disk' ? target.position : undefined;
  return saved !== undefined && /^\d{1,3}$/.test(saved) ? saved : String(rank);
}

/** Undoes a failed machine restore: the new VM and the VDIs restored into it. */
async function removeRestoredVm(
  session: XapiSession,
  vmRef: string,
  disks: readonly RestoredDisk[],
): Promise<void> {
  await session.call('VM.destroy', [vmRef]).catch(() => undefined);
  for (const disk of disks) {
    if (disk.target.kind !== 'new-disk') continue;
    const vdiRef: unknown = await session
      .call('VDI.get_by_uuid', [disk.location])
      .catch(() => undefined);
    if (typeof vdiRef === 'string') await destroyVdi(session, vdiRef).catch(() => undefined);
  }
}
