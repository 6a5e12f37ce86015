/**
 * A machine's description beyond its disks (memory, CPUs, boot, network interfaces...), as a
 * source reads it at backup time and a whole-machine restore recreates it. JSON-serialisable:
 * the engine stores it in the restore point's manifest (`vm.metadata`, docs/design.md §4.6) and
 * reads it back through `parseMachineMetadata` (a remote is untrusted input). Neutral fields
 * first; what only XAPI knows lives in the typed `xapi` sub-object. Every field is optional so
 * that older or partial descriptions still restore (with the source's defaults).
 */
import { z } from 'zod';
import { HypervisorError } from './errors.ts';

const stringMap = z.record(z.string().max(256), z.string().max(4096));
const label = z.string().max(1024);

/** One network interface of a machine. */
export const machineNicSchema = z.object({
  /** Position of the interface on the machine (XAPI: VIF device "0", "1"...). */
  device: z.string().regex(/^\d{1,3}$/),
  /** Network it was plugged into (XAPI: network uuid). */
  networkUuid: z.string().max(256),
  /** That network's name, to find it again on another pool. */
  networkLabel: label,
  /** "aa:bb:cc:dd:ee:ff", or "" when the source generated it and did not say. */
  macAddress: z.string().max(64),
  mtu: z.number().int().min(68).max(65_535),
});

/** XAPI VM fields a restore sets again through VM.create (names follow XAPI's, units in names). */
export const xapiMachinePropertiesSchema = z.object({
  memoryStaticMinBytes: z.number().int().nonnegative(),
  memoryStaticMaxBytes: z.number().int().nonnegative(),
  memoryDynamicMinBytes: z.number().int().nonnegative(),
  memoryDynamicMaxBytes: z.number().int().nonnegative(),
  vcpusMax: z.number().int().min(1).max(4096),
  vcpusAtStartup: z.number().int().min(1).max(4096),
  vcpusParams: stringMap.optional(),
  /** "" for a PV guest, "BIOS order" for HVM (UEFI is a platform/firmware key). */
  hvmBootPolicy: z.string().max(256),
  hvmBootParams: stringMap,
  hvmShadowMultiplier: z.number().positive().optional(),
  pvBootloader: z.string().max(1024),
  pvKernel: z.string().max(4096),
  pvRamdisk: z.string().max(4096),
  pvArgs: z.string().max(4096),
  pvBootloaderArgs: z.string().max(4096),
  pvLegacyArgs: z.string().max(4096),
  platform: stringMap,
  actionsAfterShutdown: z.string().max(64),
  actionsAfterReboot: z.string().max(64),
  actionsAfterCrash: z.string().max(64),
  /** "hvm", "pv", "pvh" or "unspecified" (XAPI ≥ 7.5). */
  domainType: z.string().max(64).optional(),
  hasVendorDevice: z.boolean().optional(),
  userVersion: z.number().int().optional(),
});

export const machineMetadataSchema = z.object({
  description: z.string().max(65_536).optional(),
  memoryBytes: z.number().int().nonnegative().optional(),
  vcpus: z.number().int().min(1).max(4096).optional(),
  /** How the machine boots: 'bios' (HVM BIOS), 'uefi' (HVM UEFI), 'pv' (paravirtual). */
  boot: z.enum(['bios', 'uefi', 'pv']).optional(),
  tags: z.array(z.string().max(1024)).max(1024).optional(),
  vifs: z.array(machineNicSchema).max(64),
  xapi: xapiMachinePropertiesSchema.optional(),
});

export type MachineNic = z.infer<typeof machineNicSchema>;
export type XapiMachineProperties = z.infer<typeof xapiMachinePropertiesSchema>;
export type MachineMetadata = z.infer<typeof machineMetadataSchema>;

/** Validates a description read from a manifest; errors name the field, never the value. */
export function parseMachineMetadata(value: unknown): MachineMetadata {
  const result = machineMetadataSchema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue === undefined ? '?' : issue.path.join('.');
  throw new HypervisorError(
    'HYPERVISOR_INVALID_REQUEST',
    `the machine description has an invalid field ${field}: ${issue?.message ?? 'invalid'}`,
    { details: { field } },
  );
}
