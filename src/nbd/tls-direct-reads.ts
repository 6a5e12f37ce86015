/**
 * Direct reads on a TLS socket opened by STARTTLS. Node honours the `onread` socket option (reads
 * into memory we choose, no stream machinery) only when tls.connect creates its own TCP socket;
 * NBD upgrades a socket that is already connected, so Node builds the TLS socket without it and
 * hands over every 16 KiB TLS record as a new Buffer pushed through a Readable stream: on a
 * 2-core machine that per-record cost, not the decryption, is what limits a TLS read.
 *
 * After the handshake, this installs on the TLS socket exactly the state net.Socket installs for
 * `onread` (its buffer, buffer generator and callback slots, and the handle's user buffer): the
 * TLS layer then decrypts each record into the buffer we return. Those slots are Node internals,
 * found by their symbol descriptions; when any is missing (another Node version), nothing is
 * changed and the caller keeps 'data' events. tls-direct-reads.test.ts checks that Node 20 takes
 * this path, so a Node upgrade that removes it fails a test instead of silently slowing down.
 */
import type { TLSSocket } from 'node:tls';
import type { SocketInput } from './socket-input.ts';

interface UserBufferHandle {
  useUserBuffer(buffer: Uint8Array): void;
}

function symbolNamed(target: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(target).find((symbol) => symbol.description === description);
}

/**
 * Routes the TLS socket's decrypted bytes into `input` (as `onread` would). Call it once the
 * handshake is over and no 'data' listener is attached. Returns false, changing nothing, when
 * this Node does not expose the needed internals.
 */
export function attachTlsDirectReads(socket: TLSSocket, input: SocketInput): boolean {
  const kBuffer = symbolNamed(socket, 'kBuffer');
  const kBufferCb = symbolNamed(socket, 'kBufferCb');
  const kBufferGen = symbolNamed(socket, 'kBufferGen');
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  if (kBuffer === undefined || kBufferCb === undefined || kBufferGen === undefined) return false;
  if (typeof handle?.useUserBuffer !== 'function') return false;
  const slots = socket as unknown as Record<symbol, unknown>;
  // All three slots are null on a socket created without `onread`; anything else is unknown.
  if (slots[kBuffer] !== null || slots[kBufferCb] !== null || slots[kBufferGen] !== null) {
    return false;
  }
  if (socket.listenerCount('data') > 0 || socket.readableLength > 0) return false;
  const first = input.onread.buffer();
  slots[kBufferGen] = input.onread.buffer;
  slots[kBufferCb] = input.onread.callback;
  slots[kBuffer] = first;
  handle.useUserBuffer(first);
  return true;
}
