/**
 * Pool networks and NBD (xapi.md §6): list networks with their purposes and addresses, and enable
 * NBD on one (purpose `nbd`, TLS; `insecure_nbd` only when asked explicitly), as Xen Orchestra's
 * pool Network tab does. XAPI refuses both purposes in one pool (NETWORK_INCOMPATIBLE_PURPOSES).
 */
import { INSECURE_NBD_PURPOSE, NBD_PURPOSE } from './constants.ts';
import {
  networkRecordSchema,
  parseRecordMap,
  pifRecordSchema,
  type NetworkRecord,
} from './records.ts';
import type { XapiSession } from './session.ts';

export interface NetworkEntry {
  readonly ref: string;
  readonly record: NetworkRecord;
  /** IPv4 and IPv6 addresses of the network's attached PIFs (for backup-network filtering). */
  readonly addresses: readonly string[];
  readonly nbd: 'tls' | 'insecure' | 'off';
}

export async function listNetworks(session: XapiSession): Promise<NetworkEntry[]> {
  const networks = parseRecordMap(
    networkRecordSchema,
    await session.call('network.get_all_records'),
    'network',
  );
  const pifs = parseRecordMap(pifRecordSchema, await session.call('PIF.get_all_records'), 'PIF');
  return [...networks].map(([ref, record]) => {
    const addresses: string[] = [];
    for (const pif of pifs.values()) {
      if (pif.network !== ref || !pif.currently_attached) continue;
      if (pif.IP !== '') addresses.push(pif.IP);
      for (const ipv6 of pif.IPv6 ?? [])
        if (ipv6 !== '') addresses.push(ipv6.replace(/\/\d+$/, ''));
    }
    const purpose = record.purpose ?? [];
    const nbd = purpose.includes(NBD_PURPOSE)
      ? 'tls'
      : purpose.includes(INSECURE_NBD_PURPOSE)
        ? 'insecure'
        : 'off';
    return { ref, record, addresses, nbd };
  });
}

/** Adds the NBD purpose to a network unless it has it already. */
export async function enableNbdOnNetwork(
  session: XapiSession,
  networkRef: string,
  options: { readonly insecure?: boolean } = {},
): Promise<void> {
  const purpose = options.insecure === true ? INSECURE_NBD_PURPOSE : NBD_PURPOSE;
  const current = await session.call('network.get_purpose', [networkRef]);
  if (Array.isArray(current) && current.includes(purpose)) return;
  await session.call('network.add_purpose', [networkRef, purpose]);
}

export async function disableNbdOnNetwork(session: XapiSession, networkRef: string): Promise<void> {
  const current = await session.call('network.get_purpose', [networkRef]);
  for (const purpose of [NBD_PURPOSE, INSECURE_NBD_PURPOSE]) {
    if (Array.isArray(current) && current.includes(purpose)) {
      await session.call('network.remove_purpose', [networkRef, purpose]);
    }
  }
}
