/**
 * A VM's description for a whole-VM restore (MachineMetadata, machine-metadata.ts): read from the
 * VM record and its VIFs with their networks at backup time, and turned back into a VM.create
 * record at restore time. Without a saved description, the record uses vmdelta's defaults
 * (1 vCPU, 1 GiB, HVM BIOS), as restores did before descriptions were saved.
 */
import type { MachineMetadata, MachineNic } from '../machine-metadata.ts';
import {
  networkRecordSchema,
  parseRecord,
  vifRecordSchema,
  type NetworkRecord,
} from './records.ts';
import type { VmRecord } from './records.ts';
import type { XapiSession } from './session.ts';

/** Defaults of a VM restored without a saved description. */
export const RESTORE_DEFAULT_MEMORY_BYTES = 1024 * 1024 * 1024;
export const RESTORE_DEFAULT_VCPUS = 1;
/** other_config key marking a VM created by a restore. */
export const RESTORED_MARK_KEY = 'vmdelta:restored';

/** XAPI's boot style of a VM record: PV without an HVM boot policy, UEFI by firmware. */
function bootOf(vm: VmRecord): MachineMetadata['boot'] {
  if (vm.domain_type === 'pv' || (vm.HVM_boot_policy === '' && vm.domain_type !== 'hvm'))
    return 'pv';
  return vm.HVM_boot_params?.['firmware'] === 'uefi' ? 'uefi' : 'bios';
}

/** The VIFs of a VM with their networks, sorted by device. */
async function readNics(
  session: XapiSession,
  vm: VmRecord,
  networks: Map<string, NetworkRecord>,
): Promise<MachineNic[]> {
  const nics: MachineNic[] = [];
  for (const vifRef of vm.VIFs) {
    const vif = parseRecord(vifRecordSchema, await session.call('VIF.get_record', [vifRef]), 'VIF');
    let network = networks.get(vif.network);
    if (network === undefined) {
      network = parseRecord(
        networkRecordSchema,
        await session.call('network.get_record', [vif.network]),
        'network',
      );
      networks.set(vif.network, network);
    }
    nics.push({
      device: vif.device,
      networkUuid: network.uuid,
      networkLabel: network.name_label,
      macAddress: vif.MAC,
      mtu: vif.MTU,
    });
  }
  return nics.sort((a, b) => Number(a.device) - Number(b.device));
}

/**
 * The description of a VM. `networks` (ref → record) is a cache shared across VMs of one
 * listing; records missing from it are fetched.
 */
export async function readVmMetadata(
  session: XapiSession,
  vm: VmRecord,
  networks: Map<string, NetworkRecord> = new Map(),
): Promise<MachineMetadata> {
  const vifs = await readNics(session, vm, networks);
  const memoryMax = vm.memory_static_max;
  const vcpus = vm.VCPUs_at_startup;
  const metadata: MachineMetadata = {
    ...(vm.name_description === undefined ? {} : { description: vm.name_description }),
    ...(memoryMax === undefined ? {} : { memoryBytes: memoryMax }),
    ...(vcpus === undefined || vcpus < 1 ? {} : { vcpus }),
    boot: bootOf(vm),
    tags: [...(vm.tags ?? [])],
    vifs,
  };
  if (
    vm.memory_static_min === undefined ||
    memoryMax === undefined ||
    vm.memory_dynamic_min === undefined ||
    vm.memory_dynamic_max === undefined ||
    vm.VCPUs_max === undefined ||
    vcpus === undefined
  ) {
    return metadata; // an old or partial record: the neutral fields only
  }
  return {
    ...metadata,
    xapi: {
      memoryStaticMinBytes: vm.memory_static_min,
      memoryStaticMaxBytes: memoryMax,
      memoryDynamicMinBytes: vm.memory_dynamic_min,
      memoryDynamicMaxBytes: vm.memory_dynamic_max,
      vcpusMax: vm.VCPUs_max,
      vcpusAtStartup: vcpus,
      ...(vm.VCPUs_params === undefined ? {} : { vcpusParams: vm.VCPUs_params }),
      hvmBootPolicy: vm.HVM_boot_policy ?? '',
      hvmBootParams: vm.HVM_boot_params ?? {},
      ...(vm.HVM_shadow_multiplier === undefined || !(vm.HVM_shadow_multiplier > 0)
        ? {}
        : { hvmShadowMultiplier: vm.HVM_shadow_multiplier }),
      pvBootloader: vm.PV_bootloader ?? '',
      pvKernel: vm.PV_kernel ?? '',
      pvRamdisk: vm.PV_ramdisk ?? '',
      pvArgs: vm.PV_args ?? '',
      pvBootloaderArgs: vm.PV_bootloader_args ?? '',
      pvLegacyArgs: vm.PV_legacy_args ?? '',
      platform: vm.platform ?? {},
      actionsAfterShutdown: vm.actions_after_shutdown ?? 'destroy',
      actionsAfterReboot: vm.actions_after_reboot ?? 'restart',
      actionsAfterCrash: vm.actions_after_crash ?? 'restart',
      ...(vm.domain_type === undefined ? {} : { domainType: vm.domain_type }),
      ...(vm.has_vendor_device === undefined ? {} : { hasVendorDevice: vm.has_vendor_device }),
      ...(vm.user_version === undefined ? {} : { userVersion: vm.user_version }),
    },
  };
}

/** Boot fields from the neutral `boot` value (a description saved by another source). */
function neutralBoot(boot: MachineMetadata['boot']): Record<string, unknown> {
  switch (boot) {
    case 'pv':
      return { HVM_boot_policy: '', HVM_boot_params: {}, PV_bootloader: 'pygrub' };
    case 'uefi':
      return { HVM_boot_policy: 'BIOS order', HVM_boot_params: { order: 'cd', firmware: 'uefi' } };
    default:
      return { HVM_boot_policy: 'BIOS order', HVM_boot_params: { order: 'cd' } };
  }
}

/**
 * The VM.create record of a restored VM: the saved XAPI properties when there are some, else the
 * neutral fields (memory, vCPUs, boot), else the defaults. Always halted, never a template.
 */
export function formatVmCreateRecord(
  label: string,
  metadata: MachineMetadata | undefined,
): Record<string, unknown> {
  const x = metadata?.xapi;
  const memoryBytes = metadata?.memoryBytes ?? RESTORE_DEFAULT_MEMORY_BYTES;
  const vcpus = metadata?.vcpus ?? RESTORE_DEFAULT_VCPUS;
  const common = {
    name_label: label,
    name_description: metadata?.description ?? 'restored by vmdelta',
    user_version: x?.userVersion ?? 1,
    is_a_template: false,
    affinity: 'OpaqueRef:NULL',
    tags: [...(metadata?.tags ?? [])],
    other_config: { [RESTORED_MARK_KEY]: 'true' },
    recommendations: '',
    xenstore_data: {},
    PCI_bus: '',
  };
  if (x === undefined) {
    return {
      ...common,
      memory_static_max: memoryBytes,
      memory_dynamic_max: memoryBytes,
      memory_dynamic_min: memoryBytes,
      memory_static_min: memoryBytes,
      VCPUs_max: vcpus,
      VCPUs_at_startup: vcpus,
      VCPUs_params: {},
      actions_after_shutdown: 'destroy',
      actions_after_reboot: 'restart',
      actions_after_crash: 'restart',
      PV_bootloader: '',
      PV_kernel: '',
      PV_ramdisk: '',
      PV_args: '',
      PV_bootloader_args: '',
      PV_legacy_args: '',
      platform: {},
      ...neutralBoot(metadata?.boot),
    };
  }
  return {
    ...common,
    memory_static_min: x.memoryStaticMinBytes,
    memory_static_max: x.memoryStaticMaxBytes,
    memory_dynamic_min: x.memoryDynamicMinBytes,
    memory_dynamic_max: x.memoryDynamicMaxBytes,
    VCPUs_max: x.vcpusMax,
    VCPUs_at_startup: x.vcpusAtStartup,
    VCPUs_params: x.vcpusParams ?? {},
    HVM_boot_policy: x.hvmBootPolicy,
    HVM_boot_params: x.hvmBootParams,
    ...(x.hvmShadowMultiplier === undefined
      ? {}
      : { HVM_shadow_multiplier: x.hvmShadowMultiplier }),
    PV_bootloader: x.pvBootloader,
    PV_kernel: x.pvKernel,
    PV_ramdisk: x.pvRamdisk,
    PV_args: x.pvArgs,
    PV_bootloader_args: x.pvBootloaderArgs,
    PV_legacy_args: x.pvLegacyArgs,
    platform: x.platform,
    actions_after_shutdown: x.actionsAfterShutdown,
    actions_after_reboot: x.actionsAfterReboot,
    actions_after_crash: x.actionsAfterCrash,
    ...(x.domainType === undefined ? {} : { domain_type: x.domainType }),
    ...(x.hasVendorDevice === undefined ? {} : { has_vendor_device: x.hasVendorDevice }),
  };
}
