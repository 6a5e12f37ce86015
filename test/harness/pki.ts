/**
 * TLS certificates generated per test run with certtool (gnutls-bin), in the directory layout
 * QEMU, nbdkit and libnbd expect: server/{ca-cert,server-cert,server-key}.pem and
 * client/{ca-cert,client-cert,client-key}.pem. `makePki` twice gives two unrelated CAs (for
 * wrong-certificate tests).
 */
import { chmod, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTool } from './tools.ts';
import { run } from './process.ts';

export interface Pki {
  readonly dir: string;
  readonly caCertFile: string;
  readonly serverDir: string;
  readonly clientDir: string;
  readonly serverCertFile: string;
}

export async function makePki(dir: string, commonName = 'localhost'): Promise<Pki> {
  const certtool = requireTool('certtool');
  await mkdir(join(dir, 'server'), { recursive: true });
  await mkdir(join(dir, 'client'), { recursive: true });
  const p = (name: string): string => join(dir, name);
  await writeFile(
    p('ca.info'),
    'cn = vmdelta test CA\nca\ncert_signing_key\nexpiration_days = 3650\n',
  );
  await writeFile(
    p('server.info'),
    `organization = vmdelta-test\ncn = ${commonName}\ndns_name = ${commonName}\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 3650\n`,
  );
  await writeFile(
    p('client.info'),
    'organization = vmdelta-test\ncn = backup-client\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 3650\n',
  );
  // EC keys: much faster to generate than RSA 3072, accepted by every peer.
  const key = (file: string) =>
    run(certtool, ['--generate-privkey', '--key-type=ecdsa', '--outfile', p(file)]);
  await key('ca-key.pem');
  await run(certtool, [
    '--generate-self-signed',
    '--load-privkey',
    p('ca-key.pem'),
    '--template',
    p('ca.info'),
    '--outfile',
    p('ca-cert.pem'),
  ]);
  for (const role of ['server', 'client']) {
    await key(`${role}-key.pem`);
    await run(certtool, [
      '--generate-certificate',
      '--load-privkey',
      p(`${role}-key.pem`),
      '--load-ca-certificate',
      p('ca-cert.pem'),
      '--load-ca-privkey',
      p('ca-key.pem'),
      '--template',
      p(`${role}.info`),
      '--outfile',
      p(`${role}-cert.pem`),
    ]);
    for (const file of ['ca-cert.pem', `${role}-cert.pem`, `${role}-key.pem`]) {
      await copyFile(p(file), join(dir, role, file));
    }
    await chmod(join(dir, role, `${role}-key.pem`), 0o600);
  }
  return {
    dir,
    caCertFile: p('ca-cert.pem'),
    serverDir: join(dir, 'server'),
    clientDir: join(dir, 'client'),
    serverCertFile: p('server-cert.pem'),
  };
}
