/**
 * TLS for NBD (STARTTLS, reference §4 and §17): real verification always. Either a CA (a file, or
 * `ca-cert.pem` in a QEMU-style certificates directory) with the server name checked, or a pinned
 * server certificate (the exact certificate must be presented: for self-signed servers such as
 * XAPI). A client certificate and key are sent when given (or found in the directory).
 */
import { readFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect, checkServerIdentity, type TLSSocket } from 'node:tls';
import { join } from 'node:path';
import { NbdError } from './errors.ts';

export interface NbdTlsOptions {
  /** A directory with QEMU's names: ca-cert.pem, and client-cert.pem + client-key.pem if any. */
  readonly certificatesDir?: string;
  /** CA certificate(s) (PEM) the server certificate must chain to. */
  readonly caFile?: string;
  /** The server's own certificate (PEM): only this exact certificate is accepted. */
  readonly pinnedCertificateFile?: string;
  /** Name checked against the certificate (default: the URI host, `localhost` for unix sockets). */
  readonly serverName?: string;
  readonly clientCertFile?: string;
  readonly clientKeyFile?: string;
}

/** Certificates read from disk, ready for every connection of a pool. */
export interface NbdTlsMaterial {
  readonly ca?: Buffer;
  readonly pinnedFingerprint256?: string;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly serverName: string;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

async function readRequired(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new NbdError('NBD_TLS_CONFIG', `cannot read the ${what} ${path}`, {
      cause: error,
      details: { path },
    });
  }
}

export async function loadNbdTlsMaterial(
  options: NbdTlsOptions,
  defaultServerName: string,
): Promise<NbdTlsMaterial> {
  let ca: Buffer | undefined;
  let cert: Buffer | undefined;
  let key: Buffer | undefined;
  if (options.certificatesDir !== undefined) {
    const dir = options.certificatesDir;
    cert = await readOptional(join(dir, 'client-cert.pem'));
    key = await readOptional(join(dir, 'client-key.pem'));
    ca = await readOptional(join(dir, 'ca-cert.pem'));
    if (
      ca === undefined &&
      options.caFile === undefined &&
      options.pinnedCertificateFile === undefined
    )
      throw new NbdError('NBD_TLS_CONFIG', `${dir} has no ca-cert.pem`, { details: { path: dir } });
  }
  if (options.caFile !== undefined) ca = await readRequired(options.caFile, 'CA file');
  if (options.clientCertFile !== undefined)
    cert = await readRequired(options.clientCertFile, 'client certificate');
  if (options.clientKeyFile !== undefined)
    key = await readRequired(options.clientKeyFile, 'client key');
  if ((cert === undefined) !== (key === undefined))
    throw new NbdError('NBD_TLS_CONFIG', 'a client certificate needs its key (and vice versa)');
  let pinnedFingerprint256: string | undefined;
  if (options.pinnedCertificateFile !== undefined) {
    const pem = await readRequired(options.pinnedCertificateFile, 'pinned certificate');
    try {
      pinnedFingerprint256 = new X509Certificate(pem).fingerprint256;
    } catch (error) {
      throw new NbdError(
        'NBD_TLS_CONFIG',
        `${options.pinnedCertificateFile} is not a PEM certificate`,
        { cause: error, details: { path: options.pinnedCertificateFile } },
      );
    }
  }
  if (ca === undefined && pinnedFingerprint256 === undefined) {
    throw new NbdError(
      'NBD_TLS_CONFIG',
      'TLS needs a CA (tls-certificates directory or CA file) or a pinned server certificate',
    );
  }
  return {
    serverName: options.serverName ?? defaultServerName,
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    ...(pinnedFingerprint256 === undefined ? {} : { pinnedFingerprint256 }),
  };
}

/** Runs the TLS handshake over an NBD socket after STARTTLS was acknowledged. */
export async function startNbdTls(socket: Socket, material: NbdTlsMaterial): Promise<TLSSocket> {
  const serverName = material.serverName;
  const tlsSocket = tlsConnect({
    socket,
    minVersion: 'TLSv1.2',
    ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
    ...(material.ca === undefined ? {} : { ca: material.ca }),
    ...(material.cert === undefined ? {} : { cert: material.cert }),
    ...(material.key === undefined ? {} : { key: material.key }),
    // With a CA: chain and name are checked by Node. With only a pin: checked below.
    rejectUnauthorized: material.ca !== undefined,
    checkServerIdentity: (_host, certificate) => checkServerIdentity(serverName, certificate),
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => {
      tlsSocket.destroy();
      reject(
        new NbdError('NBD_TLS_VERIFY', `TLS handshake failed: ${error.message}`, {
          cause: error,
          details: { serverName },
        }),
      );
    };
    tlsSocket.once('error', onError);
    tlsSocket.once('secureConnect', () => {
      tlsSocket.off('error', onError);
      resolve();
    });
  });
  if (material.pinnedFingerprint256 !== undefined) {
    const presented = tlsSocket.getPeerX509Certificate()?.fingerprint256;
    if (presented !== material.pinnedFingerprint256) {
      tlsSocket.destroy();
      throw new NbdError(
        'NBD_TLS_VERIFY',
        `the server certificate (SHA-256 ${presented ?? 'none'}) is not the pinned one`,
        { details: { presented, pinned: material.pinnedFingerprint256 } },
      );
    }
  }
  return tlsSocket;
}
