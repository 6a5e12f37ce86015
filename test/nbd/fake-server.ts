/**
 * A scriptable NBD server for hostile-server tests: a node `net` server on a unix socket whose
 * per-connection script reads the client's bytes and writes whatever it wants (valid or not).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import {
  greeting,
  infoBlockSize,
  infoExport,
  metaContext,
  optionReply,
  wire,
} from './server-wire.ts';

export class FakeConnection {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #ended = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#ended = true;
      this.#wake?.();
    });
    socket.on('error', () => undefined);
  }

  async read(lengthBytes: number): Promise<Buffer> {
    while (this.#buffer.length < lengthBytes) {
      if (this.#ended) throw new Error('client went away');
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
    const out = this.#buffer.subarray(0, lengthBytes);
    this.#buffer = this.#buffer.subarray(lengthBytes);
    return out;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Reads one option request: [option, data]. */
  async readOption(): Promise<[number, Buffer]> {
    const header = await this.read(16);
    return [header.readUInt32BE(8), await this.read(header.readUInt32BE(12))];
  }

  /** Reads one transmission request. */
  async readRequest(): Promise<{
    flags: number;
    command: number;
    cookie: bigint;
    offsetBytes: number;
    lengthBytes: number;
  }> {
    const header = await this.read(28);
    const request = {
      flags: header.readUInt16BE(4),
      command: header.readUInt16BE(6),
      cookie: header.readBigUInt64BE(8),
      offsetBytes: Number(header.readBigUInt64BE(16)),
      lengthBytes: header.readUInt32BE(24),
    };
    if (request.command === 1) await this.read(request.lengthBytes);
    return request;
  }

  /**
   * A well-behaved fixed-newstyle handshake: ACK STRUCTURED_REPLY (if `structured`), select the
   * requested contexts with ids 10, 11…, answer GO with INFO_EXPORT and block sizes, or with
   * ERR_UNSUP when `goUnsupported` (then serve EXPORT_NAME).
   */
  async handshake(options: {
    sizeBytes: number;
    flags?: number;
    structured?: boolean;
    goUnsupported?: boolean;
  }): Promise<void> {
    this.write(greeting(3));
    await this.read(4);
    for (;;) {
      const [option, data] = await this.readOption();
      if (option === 8) {
        this.write(optionReply(8, options.structured === false ? 0x80000001 : 1));
      } else if (option === 10) {
        const nameBytes = data.readUInt32BE(0);
        let at = 4 + nameBytes;
        const count = data.readUInt32BE(at);
        at += 4;
        for (let index = 0; index < count; index += 1) {
          const length = data.readUInt32BE(at);
          this.write(
            optionReply(
              10,
              4,
              metaContext(10 + index, data.toString('utf8', at + 4, at + 4 + length)),
            ),
          );
          at += 4 + length;
        }
        this.write(optionReply(10, 1));
      } else if (option === 7) {
        if (options.goUnsupported === true) {
          this.write(optionReply(7, 0x80000001, Buffer.from('no GO here')));
          continue;
        }
        this.write(optionReply(7, 3, infoExport(options.sizeBytes, options.flags ?? 0x0f)));
        this.write(optionReply(7, 3, infoBlockSize(1, 4096, 1 << 20)));
        this.write(optionReply(7, 1));
        return;
      } else if (option === 1) {
        this.write(Buffer.concat([wire.u64(options.sizeBytes), wire.u16(options.flags ?? 0x0f)]));
        return; // NO_ZEROES was offered and taken (client flags 3)
      } else {
        this.write(optionReply(option, 0x80000001));
      }
    }
  }
}

export interface FakeServer {
  readonly uri: string;
  readonly connections: number;
  close(): Promise<void>;
}

let counter = 0;

export async function startFakeNbdServer(
  dir: string,
  script: (connection: FakeConnection) => Promise<void>,
): Promise<FakeServer> {
  counter += 1;
  const socketPath = join(dir, `fake-${process.pid}-${counter}.sock`);
  const sockets = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    script(new FakeConnection(socket)).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return {
    uri: `nbd+unix:///?socket=${socketPath}`,
    get connections() {
      return connections;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
