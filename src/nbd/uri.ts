/**
 * NBD URIs (the NBD URI standard, NetworkBlockDevice/nbd doc/uri.md; libnbd's forms):
 * `nbd://host[:port]/export`, `nbds://…` (TLS), `nbd+unix:///export?socket=PATH`,
 * `nbds+unix:///export?socket=PATH`. Query parameters: `socket`, `tls-certificates=DIR` (QEMU's
 * file names), `tls-hostname=NAME`; `tls-verify-peer=false` is refused (vmdelta always verifies).
 */
import { NbdError } from './errors.ts';

export const NBD_DEFAULT_PORT = 10809;

export type NbdEndpoint =
  | { readonly kind: 'tcp'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly socketPath: string };

export interface NbdTarget {
  readonly endpoint: NbdEndpoint;
  readonly exportName: string;
  readonly tls: boolean;
  readonly tlsCertificatesDir?: string;
  readonly tlsServerName?: string;
}

const schemes: Readonly<Record<string, { tls: boolean; unix: boolean }>> = {
  'nbd:': { tls: false, unix: false },
  'nbds:': { tls: true, unix: false },
  'nbd+unix:': { tls: false, unix: true },
  'nbds+unix:': { tls: true, unix: true },
};

function invalid(uri: string, why: string): NbdError {
  return new NbdError('NBD_INVALID_URI', `bad NBD URI ${formatNbdUriForDisplay(uri)}: ${why}`);
}

export function parseNbdUri(uri: string): NbdTarget {
  let url: URL;
  try {
    url = new URL(uri);
  } catch (error) {
    throw new NbdError('NBD_INVALID_URI', `not a URI: ${formatNbdUriForDisplay(uri)}`, {
      cause: error,
    });
  }
  const scheme = schemes[url.protocol];
  if (scheme === undefined)
    throw invalid(uri, `scheme must be nbd, nbds, nbd+unix or nbds+unix, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '')
    throw invalid(uri, 'user names and passwords (TLS PSK) are not supported');
  if (url.hash !== '') throw invalid(uri, 'fragments are not allowed');
  let exportName: string;
  try {
    exportName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  } catch {
    throw invalid(uri, 'export name is not valid percent-encoding');
  }
  let socketPath: string | undefined;
  let tlsCertificatesDir: string | undefined;
  let tlsServerName: string | undefined;
  for (const [key, value] of url.searchParams) {
    if (key === 'socket') socketPath = value;
    else if (key === 'tls-certificates') tlsCertificatesDir = value;
    else if (key === 'tls-hostname') tlsServerName = value;
    else if (key === 'tls-verify-peer') {
      if (value !== 'true' && value !== '1')
        throw invalid(uri, 'tls-verify-peer=false is refused: vmdelta always verifies');
    } else throw invalid(uri, `unsupported query parameter ${key}`);
  }
  if (!scheme.tls && (tlsCertificatesDir !== undefined || tlsServerName !== undefined))
    throw invalid(uri, 'TLS parameters need an nbds:// or nbds+unix:// URI');
  let endpoint: NbdEndpoint;
  if (scheme.unix) {
    if (url.host !== '') throw invalid(uri, 'a unix-socket URI has no host (use nbd+unix:///…)');
    if (socketPath === undefined || socketPath === '')
      throw invalid(uri, 'the socket=PATH parameter is required');
    endpoint = { kind: 'unix', socketPath };
  } else {
    if (socketPath !== undefined) throw invalid(uri, 'socket= is only for +unix URIs');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (host === '') throw invalid(uri, 'a host is required');
    const port = url.port === '' ? NBD_DEFAULT_PORT : Number(url.port);
    endpoint = { kind: 'tcp', host, port };
  }
  return {
    endpoint,
    exportName,
    tls: scheme.tls,
    ...(tlsCertificatesDir === undefined ? {} : { tlsCertificatesDir }),
    ...(tlsServerName === undefined ? {} : { tlsServerName }),
  };
}

/** The canonical URI of a target, for logs and reports (it never carries secrets). */
export function formatNbdUri(target: NbdTarget): string {
  const exportPath = `/${encodeURIComponent(target.exportName)}`;
  const scheme = target.tls ? 'nbds' : 'nbd';
  if (target.endpoint.kind === 'unix')
    return `${scheme}+unix://${exportPath}?socket=${target.endpoint.socketPath}`;
  const host = target.endpoint.host.includes(':')
    ? `[${target.endpoint.host}]`
    : target.endpoint.host;
  const port = target.endpoint.port === NBD_DEFAULT_PORT ? '' : `:${target.endpoint.port}`;
  return `${scheme}://${host}${port}${exportPath}`;
}

/** A URI as given by a user, with any user-info part removed, for error messages. */
export function formatNbdUriForDisplay(uri: string): string {
  return uri.replace(/\/\/[^/@]*@/, '//');
}
