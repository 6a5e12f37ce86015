// STARTTLS with real verification against qemu-nbd and nbdkit: the right CA (or the pinned server
// certificate) is accepted and data reads back intact; another CA, another pinned certificate, a
// wrong server name, or plaintext against a TLS-only server are refused with typed errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import {
  createImage,
  makePki,
  makeTempDir,
  qemuIo,
  sha256File,
  startNbdkit,
  startQemuNbd,
  type NbdServer,
  type Pki,
  type TempDir,
} from '../harness/index.ts';
import { NbdError, openNbdClient, openNbdPool, type NbdTlsOptions } from '../../src/nbd/index.ts';

const MiB = 1024 * 1024;
let tmp: TempDir;
let pki: Pki;
let otherPki: Pki;
let image: string;
let server: NbdServer;

before(async () => {
  tmp = await makeTempDir('vmd-tls-');
  [pki, otherPki] = await Promise.all([
    makePki(join(tmp.path, 'pki')),
    makePki(join(tmp.path, 'pki2')),
  ]);
  image = join(tmp.path, 't.raw');
  await createImage(image, 'raw', 8 * MiB);
  await qemuIo(image, 'raw', ['write -P 0x61 0 3M', 'write -P 0x62 5M 1M']);
  server = await startQemuNbd({
    dir: tmp.path,
    image,
    format: 'raw',
    readOnly: true,
    shared: 4,
    listen: { transport: 'tcp', tls: pki, verifyPeer: true },
  });
});

after(async () => {
  await server.stop();
  await tmp.remove();
});

function isCode(code: string) {
  return (error: unknown) => error instanceof NbdError && error.code === code;
}

async function readAll(uri: string, tls?: NbdTlsOptions): Promise<string> {
  const pool = await openNbdPool({ uri, connections: 2, ...(tls === undefined ? {} : { tls }) });
  try {
    assert.equal(pool.info.tls, true);
    const hash = createHash('sha256');
    const reads = [];
    for (let offset = 0; offset < pool.info.sizeBytes; offset += MiB)
      reads.push(pool.read(offset, MiB));
    for (const read of reads) hash.update(await read);
    return hash.digest('hex');
  } finally {
    await pool.close();
  }
}

test('the right CA and client certificate (tls-certificates=DIR in the URI) are accepted', async () => {
  const expected = await sha256File(image);
  assert.equal(await readAll(`${server.uri}?tls-certificates=${pki.clientDir}`), expected);
  // The same through explicit options, with the name checked (certificate SAN is localhost).
  const byName = server.uri.replace('127.0.0.1', 'localhost');
  assert.equal(await readAll(byName, { certificatesDir: pki.clientDir }), expected);
});

test('a pinned server certificate is accepted; another one is refused', async () => {
  const expected = await sha256File(image);
  assert.equal(
    await readAll(server.uri, {
      pinnedCertificateFile: pki.serverCertFile,
      clientCertFile: join(pki.clientDir, 'client-cert.pem'),
      clientKeyFile: join(pki.clientDir, 'client-key.pem'),
    }),
    expected,
  );
  await assert.rejects(
    openNbdClient({
      uri: server.uri,
      tls: {
        pinnedCertificateFile: otherPki.serverCertFile,
        clientCertFile: join(pki.clientDir, 'client-cert.pem'),
        clientKeyFile: join(pki.clientDir, 'client-key.pem'),
      },
    }),
    isCode('NBD_TLS_VERIFY'),
  );
});

test('another CA, a wrong server name, plaintext, and missing TLS material are refused', async () => {
  await assert.rejects(
    openNbdClient({ uri: server.uri, tls: { certificatesDir: otherPki.clientDir } }),
    isCode('NBD_TLS_VERIFY'),
  );
  await assert.rejects(
    openNbdClient({
      uri: server.uri,
      tls: { certificatesDir: pki.clientDir, serverName: 'not-the-server.example' },
    }),
    isCode('NBD_TLS_VERIFY'),
  );
  await assert.rejects(
    openNbdClient({ uri: server.uri.replace('nbds://', 'nbd://') }),
    isCode('NBD_TLS_REQUIRED'),
  );
  await assert.rejects(openNbdClient({ uri: server.uri }), isCode('NBD_TLS_CONFIG'));
  await assert.rejects(
    openNbdClient({ uri: server.uri, tls: { caFile: join(tmp.path, 'missing.pem') } }),
    isCode('NBD_TLS_CONFIG'),
  );
});

test('TLS over a unix socket (nbds+unix) with nbdkit; a plaintext-only server refuses STARTTLS', async () => {
  const kit = await startNbdkit({
    dir: tmp.path,
    plugin: 'file',
    args: [image],
    readOnly: true,
    listen: { tls: pki },
  });
  const plain = await startNbdkit({ dir: tmp.path, plugin: 'file', args: [image], readOnly: true });
  try {
    assert.match(kit.uri, /^nbds\+unix:/);
    assert.equal(await readAll(kit.uri, { caFile: pki.caCertFile }), await sha256File(image));
    await assert.rejects(
      openNbdClient({ uri: kit.uri, tls: { caFile: otherPki.caCertFile } }),
      isCode('NBD_TLS_VERIFY'),
    );
    await assert.rejects(
      openNbdClient({
        uri: plain.uri.replace('nbd+unix', 'nbds+unix'),
        tls: { caFile: pki.caCertFile },
      }),
      isCode('NBD_TLS_UNSUPPORTED'),
    );
  } finally {
    await kit.stop();
    await plain.stop();
  }
});
