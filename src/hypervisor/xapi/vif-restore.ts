/**
 * The network interfaces of a restored VM (VIF.create, one per saved VIF, in device order).
 *
 * - Network: the saved uuid on this pool, else a network with the saved name label (another
 *   pool), else the request's default network (uuid or name) when given; otherwise the VIF is
 *   skipped with a NETWORK_NOT_FOUND warning. A missing network never fails the restore.
 * - MAC: kept, unless another VIF of the pool already uses it (the original VM still exists, or an
 *   earlier restore of it): then XAPI generates one (MAC "") and MAC_REGENERATED says so. A MAC
 *   that XAPI refuses (MAC_INVALID) is also regenerated with that warning.
 * - MTU: the saved one.
 * - Any other refusal of VIF.create is a VIF_CREATE_FAILED warning: the disks are restored and the
 *   VM is kept.
 */
import type { MachineNic } from '../machine-metadata.ts';
import type { RestoreWarning, RestoredNic } from '../hypervisor.ts';
import { describeError } from '../../core/index.ts';
import { XapiError, isXapiCode } from './errors.ts';
import { networkRecordSchema, parseRecordMap, vifRecordSchema } from './records.ts';
import type { XapiSession } from './session.ts';

/** XAPI error codes of VIF.create the restore reacts to (datamodel api_errors). */
const MAC_INVALID = 'MAC_INVALID';

export interface VifRestoreOptions {
  /** Network (uuid or name label) for VIFs whose network is not found. */
  readonly defaultNetwork?: string;
}

function normaliseMac(mac: string): string {
  return mac.trim().toLowerCase();
}

export async function restoreVifs(
  session: XapiSession,
  vmRef: string,
  nics: readonly MachineNic[],
  options: VifRestoreOptions = {},
): Promise<{ nics: RestoredNic[]; warnings: RestoreWarning[] }> {
  const warnings: RestoreWarning[] = [];
  const restored: RestoredNic[] = [];
  if (nics.length === 0) return { nics: restored, warnings };
  const networks = parseRecordMap(
    networkRecordSchema,
    await session.call('network.get_all_records'),
    'network',
  );
  const usedMacs = new Set(
    [
      ...parseRecordMap(vifRecordSchema, await session.call('VIF.get_all_records'), 'VIF').values(),
    ].map((vif) => normaliseMac(vif.MAC)),
  );
  const find = (wanted: string, byLabel: boolean): [string, string] | undefined => {
    for (const [ref, record] of networks) {
      if (record.uuid === wanted || (byLabel && record.name_label === wanted))
        return [ref, record.uuid];
    }
    return undefined;
  };
  const sorted = [...nics].sort((a, b) => Number(a.device) - Number(b.device));
  for (const nic of sorted) {
    const network =
      find(nic.networkUuid, false) ??
      (nic.networkLabel === '' ? undefined : find(nic.networkLabel, true)) ??
      (options.defaultNetwork === undefined ? undefined : find(options.defaultNetwork, true));
    if (network === undefined) {
      warnings.push({
        code: 'NETWORK_NOT_FOUND',
        message: `VIF ${nic.device} skipped: no network ${nic.networkLabel} (${nic.networkUuid}) on this pool and no default network`,
        details: { device: nic.device, networkUuid: nic.networkUuid, network: nic.networkLabel },
      });
      continue;
    }
    const [networkRef, networkUuid] = network;
    let mac = nic.macAddress;
    if (mac !== '' && usedMacs.has(normaliseMac(mac))) {
      warnings.push({
        code: 'MAC_REGENERATED',
        message: `VIF ${nic.device}: MAC ${mac} is used by another VIF of the pool; XAPI generated a new one`,
        details: { device: nic.device, savedMac: mac },
      });
      mac = '';
    }
    const record = (macAddress: string): Record<string, unknown> => ({
      device: nic.device,
      network: networkRef,
      VM: vmRef,
      MAC: macAddress,
      MTU: nic.mtu,
      other_config: {},
      qos_algorithm_type: '',
      qos_algorithm_params: {},
      locking_mode: 'network_default',
      ipv4_allowed: [],
      ipv6_allowed: [],
    });
    let vifRef: string;
    try {
      try {
        vifRef = String(await session.call('VIF.create', [record(mac)]));
      } catch (error) {
        if (!isXapiCode(error, MAC_INVALID) || mac === '') throw error;
        warnings.push({
          code: 'MAC_REGENERATED',
          message: `VIF ${nic.device}: XAPI refused MAC ${mac} (MAC_INVALID); it generated a new one`,
          details: { device: nic.device, savedMac: mac },
        });
        vifRef = String(await session.call('VIF.create', [record('')]));
      }
    } catch (error) {
      // The disks are restored: a VIF XAPI refuses is reported, the VM is kept.
      warnings.push({
        code: 'VIF_CREATE_FAILED',
        message: `VIF ${nic.device} could not be created: ${describeError(error)}`,
        details: {
          device: nic.device,
          ...(error instanceof XapiError && error.xapiCode !== undefined
            ? { xapiCode: error.xapiCode }
            : {}),
        },
      });
      continue;
    }
    const finalMac = String(await session.call('VIF.get_MAC', [vifRef]));
    usedMacs.add(normaliseMac(finalMac));
    restored.push({ device: nic.device, networkUuid, macAddress: finalMac, mtu: nic.mtu });
  }
  return { nics: restored, warnings };
}
