/**
 * Restores into XAPI (xapi.md §5): a restore point (a full DiskSource) becomes a new VDI on an SR,
 * imported as a dynamic VHD whose exact length comes from planVhd (XAPI refuses chunked uploads),
 * or a raw image over an existing disk of a halted VM. A machine restore creates a halted VM and
 * attaches the restored disks in order. A failed import destroys the VDI it created.
 */
import { Readable } from 'node:stream';
import { blockCountFor, blockLengthBytes, zeroBlock, type DiskSource } from '../../disk/index.ts';
import { MAX_WRITE_SIZE_BYTES, VHD_SECTOR_BYTES, writeVhd } from '../../vhd/index.ts';
import { HypervisorError } from '../errors.ts';
import type {
  DiskRestoreTarget,
  MachineRestoreRequest,
  RestoreOptions,
  RestoredDisk,
  RestoredMachine,
} from '../hypervisor.ts';
import { IMPORT_RAW_VDI_PATH } from './constants.ts';
import { getVmRecord, listVmDisks } from './inventory.ts';
import type { XapiSession } from './session.ts';
import { destroyVdi } from './snapshots.ts';
import { importRawVdi } from './vdi-transfer.ts';
import { createVdi } from './vm-operations.ts';

/** Every byte of a full source, holes as zeros, in order (a raw import body). */
function rawBody(source: DiskSource, signal: AbortSignal | undefined): Readable {
  return Readable.from(
    (async function* () {
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
    })(),
  );
}

function vhdFits(source: DiskSource): boolean {
  return source.sizeBytes % VHD_SECTOR_BYTES === 0 && source.sizeBytes <= MAX_WRITE_SIZE_BYTES;
}

async function importInto(
  session: XapiSession,
  vdiRef: string,
  source: DiskSource,
  format: 'vhd' | 'raw',
  signal: AbortSignal | undefined,
): Promise<void> {
  if (format === 'vhd') {
    const writer = writeVhd(source, signal === undefined ? {} : { signal });
    let opened = false;
    await importRawVdi(session, {
      vdi: vdiRef,
      format: 'vhd',
      contentLengthBytes: writer.lengthBytes,
      openBody: () => {
        // A source is read once: a 302 after the body started cannot be replayed.
        if (opened) throw new HypervisorError('HYPERVISOR_INVALID_REQUEST', 'import body reopened');
        opened = true;
        return writer.toReadable();
      },
      ...(signal === undefined ? {} : { signal }),
    });
    return;
  }
  await importRawVdi(session, {
    vdi: vdiRef,
    format: 'raw',
    contentLengthBytes: source.sizeBytes,
    openBody: () => rawBody(source, signal),
    ...(signal === undefined ? {} : { signal }),
  });
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
    await importInto(session, disk.vdiRef, source, 'raw', options.signal);
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
    await importInto(session, vdiRef, source, format, options.signal);
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
          bootable: position === 0,
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

/** A new halted VM with each disk restored as a new VDI, attached in request order. */
export async function restoreXapiMachine(
  session: XapiSession,
  request: MachineRestoreRequest,
): Promise<RestoredMachine> {
  let machineId: string | undefined;
  let vmRef: string | undefined;
  if (request.machine !== undefined) {
    vmRef = String(
      await session.call('VM.create', [
        {
          name_label: request.machine.label,
          name_description: 'restored by vmdelta',
          user_version: 1,
          is_a_template: false,
          memory_static_max: 1073741824,
          memory_dynamic_max: 1073741824,
          memory_dynamic_min: 1073741824,
          memory_static_min: 1073741824,
          VCPUs_max: 1,
          VCPUs_at_startup: 1,
          actions_after_shutdown: 'destroy',
          actions_after_reboot: 'restart',
          actions_after_crash: 'restart',
          HVM_boot_policy: 'BIOS order',
          HVM_boot_params: { order: 'cd' },
          other_config: { 'vmdelta:restored': 'true' },
        },
      ]),
    );
    machineId = String(await session.call('VM.get_uuid', [vmRef]));
  }
  const disks: RestoredDisk[] = [];
  for (const [position, entry] of request.disks.entries()) {
    const target =
      machineId !== undefined && entry.target.kind === 'new-disk'
        ? { ...entry.target, machineId }
        : entry.target;
    disks.push(
      await restoreXapiDisk(
        session,
        entry.source,
        target,
        request.signal === undefined ? {} : { signal: request.signal },
        machineId === undefined ? undefined : String(position),
      ),
    );
  }
  return { ...(machineId === undefined ? {} : { machineId }), disks };
}
