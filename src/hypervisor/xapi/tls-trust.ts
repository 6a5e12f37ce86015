/**
 * How the XAPI client trusts a host's HTTPS certificate (XAPI's default certificate is
 * self-signed, xapi.md §1): either verified against a CA (the system store or a given PEM, with
 * the host name checked), or pinned by SHA-256 fingerprint. A pinned connection is handed to the
 * HTTP layer only after the fingerprint matched, so nothing (password, session) is sent before.
 */
import { X509Certificate } from 'node:crypto';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent, type RequestOptions } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { XapiError } from './errors.ts';

export type XapiTlsTrust =
  | {
      readonly kind: 'ca';
      /** PEM of the CA(s) to trust instead of the system store. */
      readonly caPem?: string;
    }
  | {
      readonly kind: 'pinned';
      /** SHA-256 fingerprints, hex with or without colons, any case. */
      readonly sha256Fingerprints?: readonly string[];
      /** PEM certificates whose fingerprints are pinned (e.g. VDI.get_nbd_info's `cert`). */
      readonly certificatePems?: readonly string[];
    };

/** Canonical fingerprint form: upper-case hex pairs separated by colons (Node's form). */
export function normaliseFingerprint(fingerprint: string): string {
  const hex = fingerprint.replace(/[^0-9a-fA-F]/g, '').toUpperCase();
  if (hex.length !== 64) {
    throw new XapiError('XAPI_TLS_PIN_MISMATCH', 'a pinned SHA-256 fingerprint must be 32 bytes', {
      details: { field: 'sha256Fingerprints' },
    });
  }
  return hex.replace(/(..)(?!$)/g, '$1:');
}

/** SHA-256 fingerprint of the first certificate of a PEM, in canonical form. */
export function fingerprintOfPem(pem: string): string {
  try {
    return new X509Certificate(pem).fingerprint256;
  } catch (error) {
    throw new XapiError('XAPI_TLS_PIN_MISMATCH', 'a pinned certificate is not a valid PEM', {
      cause: error,
      details: { field: 'certificatePems' },
    });
  }
}

export function pinnedFingerprints(trust: XapiTlsTrust & { kind: 'pinned' }): ReadonlySet<string> {
  const pins = new Set<string>();
  for (const fingerprint of trust.sha256Fingerprints ?? [])
    pins.add(normaliseFingerprint(fingerprint));
  for (const pem of trust.certificatePems ?? []) pins.add(fingerprintOfPem(pem));
  if (pins.size === 0) {
    throw new XapiError('XAPI_TLS_PIN_MISMATCH', 'pinned TLS trust without any fingerprint');
  }
  return pins;
}

/** An HTTPS agent that accepts exactly the pinned certificates, whatever their issuer or name. */
class PinnedHttpsAgent extends HttpsAgent {
  readonly #pins: ReadonlySet<string>;

  constructor(pins: ReadonlySet<string>) {
    // Session resumption is off so that every connection shows its certificate.
    super({ keepAlive: true, maxSockets: 16, maxCachedSessions: 0 });
    this.#pins = pins;
  }

  override createConnection(
    options: RequestOptions,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.host ?? options.hostname ?? 'localhost';
    const socket = tlsConnect({
      host,
      port: Number(options.port ?? 443),
      ...(isIP(host) === 0 ? { servername: host } : {}),
      rejectUnauthorized: false,
    });
    let settled = false;
    const settle = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      socket.removeListener('error', onError);
      callback?.(error, socket);
    };
    const onError = (error: Error): void =>
      settle(
        new XapiError('XAPI_TRANSPORT', `TLS connection failed: ${error.message}`, {
          cause: error,
          retryable: true,
        }),
      );
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      const fingerprint = socket.getPeerCertificate().fingerprint256;
      if (!this.#pins.has(fingerprint)) {
        socket.destroy();
        settle(
          new XapiError(
            'XAPI_TLS_PIN_MISMATCH',
            `host ${host} presented certificate ${fingerprint}, which is not pinned`,
            { details: { host, fingerprint } },
          ),
        );
        return;
      }
      settle(null);
    });
    return undefined;
  }
}

/** The keep-alive agent for `protocol` ('http:' or 'https:') under `trust`. */
export function createXapiAgent(protocol: string, trust: XapiTlsTrust | undefined): HttpAgent {
  if (protocol === 'http:') return new HttpAgent({ keepAlive: true, maxSockets: 16 });
  if (trust?.kind === 'pinned') return new PinnedHttpsAgent(pinnedFingerprints(trust));
  return new HttpsAgent({
    keepAlive: true,
    maxSockets: 16,
    rejectUnauthorized: true,
    ...(trust?.caPem === undefined ? {} : { ca: trust.caPem }),
  });
}
