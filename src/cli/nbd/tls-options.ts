/** The TLS command-line options shared by the `vmdelta nbd` commands, turned into NbdTlsOptions. */
import type { Command } from 'commander';
import type { NbdTlsOptions } from '../../nbd/index.ts';

export interface TlsCliOptions {
  readonly tlsCertificates?: string;
  readonly tlsCa?: string;
  readonly tlsPin?: string;
  readonly tlsServerName?: string;
  readonly tlsClientCert?: string;
  readonly tlsClientKey?: string;
}

export function addTlsOptions(command: Command): Command {
  return command
    .option(
      '--tls-certificates <dir>',
      'directory with ca-cert.pem (and client-cert.pem, client-key.pem), named as QEMU names them',
    )
    .option('--tls-ca <file>', 'CA certificate (PEM) the server certificate must chain to')
    .option(
      '--tls-pin <file>',
      'the server certificate itself (PEM): only this exact certificate is accepted',
    )
    .option(
      '--tls-server-name <name>',
      'name to check in the server certificate (default: the host)',
    )
    .option('--tls-client-cert <file>', 'client certificate (PEM) for servers that verify clients')
    .option('--tls-client-key <file>', 'client private key (PEM)');
}

export function tlsOptionsFrom(options: TlsCliOptions): NbdTlsOptions | undefined {
  const tls: NbdTlsOptions = {
    ...(options.tlsCertificates === undefined ? {} : { certificatesDir: options.tlsCertificates }),
    ...(options.tlsCa === undefined ? {} : { caFile: options.tlsCa }),
    ...(options.tlsPin === undefined ? {} : { pinnedCertificateFile: options.tlsPin }),
    ...(options.tlsServerName === undefined ? {} : { serverName: options.tlsServerName }),
    ...(options.tlsClientCert === undefined ? {} : { clientCertFile: options.tlsClientCert }),
    ...(options.tlsClientKey === undefined ? {} : { clientKeyFile: options.tlsClientKey }),
  };
  return Object.keys(tls).length === 0 ? undefined : tls;
}
