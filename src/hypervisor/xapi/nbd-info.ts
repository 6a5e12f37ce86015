/**
 * NBD on XAPI (xapi.md §6): VDI.get_nbd_info gives one entry per address of each host that can
 * serve the disk, with the host certificate to pin, the name to check, and an export name that
 * embeds the session (a secret). Entries can be restricted to a backup network's addresses.
 */
import { X509Certificate } from 'node:crypto';
import { XapiError } from './errors.ts';
import { nbdInfoSchema, parseRecord } from './records.ts';
import { SecretString } from './secret.ts';
import type { XapiSession } from './session.ts';

export interface XapiNbdEndpoint {
  readonly address: string;
  readonly port: number;
  /** PEM of the host's server certificate: pin it (or use it as the only trust anchor). */
  readonly certPem: string;
  readonly certSha256Fingerprint: string;
  /** Name the certificate must carry (TLS servername). */
  readonly subject: string;
  readonly exportName: SecretString;
}

export interface NbdInfoOptions {
  /** Keep only entries whose address is one of these (the backup network's PIF addresses). */
  readonly allowedAddresses?: ReadonlySet<string>;
}

export async function getNbdInfo(
  session: XapiSession,
  vdiRef: string,
  options: NbdInfoOptions = {},
): Promise<XapiNbdEndpoint[]> {
  const answer = await session.call('VDI.get_nbd_info', [vdiRef]);
  if (!Array.isArray(answer)) {
    throw new XapiError('XAPI_RECORD_INVALID', 'VDI.get_nbd_info did not return a list', {
      details: { className: 'vdi_nbd_server_info' },
    });
  }
  const endpoints: XapiNbdEndpoint[] = [];
  for (const item of answer) {
    const info = parseRecord(nbdInfoSchema, item, 'vdi_nbd_server_info');
    if (options.allowedAddresses !== undefined && !options.allowedAddresses.has(info.address))
      continue;
    let fingerprint: string;
    try {
      fingerprint = new X509Certificate(info.cert).fingerprint256;
    } catch (error) {
      throw new XapiError(
        'XAPI_RECORD_INVALID',
        'VDI.get_nbd_info returned an invalid certificate',
        {
          cause: error,
          details: { className: 'vdi_nbd_server_info', field: 'cert' },
        },
      );
    }
    endpoints.push({
      address: info.address,
      port: info.port,
      certPem: info.cert,
      certSha256Fingerprint: fingerprint,
      subject: info.subject,
      exportName: new SecretString(info.exportname),
    });
  }
  return endpoints;
}

/** Like getNbdInfo, but no entry left is an XAPI_NO_NBD error (XO's NO_NBD_AVAILABLE). */
export async function requireNbdInfo(
  session: XapiSession,
  vdiRef: string,
  options: NbdInfoOptions = {},
): Promise<XapiNbdEndpoint[]> {
  const endpoints = await getNbdInfo(session, vdiRef, options);
  if (endpoints.length === 0) {
    throw new XapiError('XAPI_NO_NBD', 'no NBD endpoint for this disk on an NBD-enabled network', {
      retryable: false,
    });
  }
  return endpoints;
}
