/**
 * VM and VDI operations around a backup (xapi.md §3, §12): blocking migrations for the duration
 * of a run through `blocked_operations`, creating an empty VDI (restore target of a disk), and
 * the host's clock (timestamps that do not depend on our clock).
 */
import { XapiError } from './errors.ts';
import type { XapiSession } from './session.ts';

/** Operations that would move a VM's disks while a backup reads them. */
export const MIGRATION_OPERATIONS = ['pool_migrate', 'migrate_send'] as const;

/** Blocks `operations` on a VM with a reason users see in XAPI clients. */
export async function blockVmOperations(
  session: XapiSession,
  vmRef: string,
  reason: string,
  operations: readonly string[] = MIGRATION_OPERATIONS,
): Promise<void> {
  for (const operation of operations) {
    await session.call('VM.remove_from_blocked_operations', [vmRef, operation]);
    await session.call('VM.add_to_blocked_operations', [vmRef, operation, reason]);
  }
}

export async function unblockVmOperations(
  session: XapiSession,
  vmRef: string,
  operations: readonly string[] = MIGRATION_OPERATIONS,
): Promise<void> {
  for (const operation of operations) {
    await session.call('VM.remove_from_blocked_operations', [vmRef, operation]);
  }
}

export interface CreateVdiOptions {
  readonly srRef: string;
  readonly nameLabel: string;
  readonly nameDescription?: string;
  readonly virtualSizeBytes: number;
  readonly otherConfig?: Readonly<Record<string, string>>;
}

/** Creates an empty user VDI on an SR (VDI.create takes a whole record). */
export async function createVdi(session: XapiSession, options: CreateVdiOptions): Promise<string> {
  if (!Number.isSafeInteger(options.virtualSizeBytes) || options.virtualSizeBytes <= 0) {
    throw new XapiError('XAPI_PROTOCOL', 'a VDI needs a positive virtual size', {
      details: { field: 'virtualSizeBytes' },
    });
  }
  const ref = await session.call('VDI.create', [
    {
      name_label: options.nameLabel,
      name_description: options.nameDescription ?? '',
      SR: options.srRef,
      virtual_size: options.virtualSizeBytes,
      type: 'user',
      sharable: false,
      read_only: false,
      other_config: options.otherConfig ?? {},
      xenstore_data: {},
      sm_config: {},
      tags: [],
    },
  ]);
  if (typeof ref !== 'string' || !ref.startsWith('OpaqueRef:')) {
    throw new XapiError('XAPI_PROTOCOL', 'VDI.create did not return a reference');
  }
  return ref;
}

/** The host's clock, in XAPI's datetime form `YYYYMMDDTHH:MM:SSZ`. */
export async function getHostTime(session: XapiSession, hostRef: string): Promise<string> {
  return String(await session.call('host.get_servertime', [hostRef]));
}
