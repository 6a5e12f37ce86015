// NBD URIs: the four schemes, ports, export names, query parameters; malformed ones are typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NbdError, formatNbdUri, parseNbdUri } from '../../src/nbd/index.ts';

test('the URI forms of the NBD URI standard parse and format back', () => {
  assert.deepEqual(parseNbdUri('nbd://example.com/disk'), {
    endpoint: { kind: 'tcp', host: 'example.com', port: 10809 },
    exportName: 'disk',
    tls: false,
  });
  assert.deepEqual(
    parseNbdUri('nbds://127.0.0.1:10820/a%20b?tls-certificates=/etc/pki/c&tls-hostname=srv'),
    {
      endpoint: { kind: 'tcp', host: '127.0.0.1', port: 10820 },
      exportName: 'a b',
      tls: true,
      tlsCertificatesDir: '/etc/pki/c',
      tlsServerName: 'srv',
    },
  );
  assert.deepEqual(parseNbdUri('nbd+unix:///?socket=/tmp/s.sock'), {
    endpoint: { kind: 'unix', socketPath: '/tmp/s.sock' },
    exportName: '',
    tls: false,
  });
  assert.equal(parseNbdUri('nbds+unix:///e?socket=/s&tls-certificates=/d').tls, true);
  assert.deepEqual(parseNbdUri('nbd://[::1]:99/').endpoint, { kind: 'tcp', host: '::1', port: 99 });
  assert.equal(formatNbdUri(parseNbdUri('nbd://h:10809/x')), 'nbd://h/x');
  assert.equal(
    formatNbdUri(parseNbdUri('nbds://[::1]:99/x?tls-certificates=/d')),
    'nbds://[::1]:99/x',
  );
  assert.equal(formatNbdUri(parseNbdUri('nbd+unix:///e?socket=/s')), 'nbd+unix:///e?socket=/s');
});

test('malformed URIs are NBD_INVALID_URI and never echo a password', () => {
  for (const uri of [
    'http://h/x',
    'nbd:///x',
    'nbd+unix:///x',
    'nbd+unix://host/x?socket=/s',
    'nbd://h/x?socket=/s',
    'nbd://h/x?tls-certificates=/d',
    'nbd://h/x?bogus=1',
    'nbds://h/x?tls-verify-peer=false',
    'nbd://user:secret@h/x',
    'not a uri',
  ]) {
    assert.throws(
      () => parseNbdUri(uri),
      (error: unknown) =>
        error instanceof NbdError &&
        error.code === 'NBD_INVALID_URI' &&
        !error.message.includes('secret'),
      uri,
    );
  }
});
