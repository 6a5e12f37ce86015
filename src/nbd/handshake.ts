/**
 * The fixed-newstyle handshake over a connected socket (reference §3–§4, order of §3):
 * STARTTLS first when wanted, then STRUCTURED_REPLY, LIST/SET_META_CONTEXT, and GO asking for
 * block sizes, falling back to EXPORT_NAME on servers without GO. Thin I/O around the pure
 * decoders; every reply is validated by them.
 */
import type { Socket } from 'node:net';
import {
  NBD_DEFAULT_MAX_PAYLOAD_BYTES,
  NBD_DEFAULT_MIN_BLOCK_BYTES,
  NBD_DEFAULT_PREFERRED_BLOCK_BYTES,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_BLOCK_SIZE_REQD,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_FLAG_ERROR,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
} from './constants.ts';
import {
  encodeClientFlags,
  encodeExportNameOption,
  encodeInfoOption,
  encodeMetaContextOption,
  encodeOption,
} from './encode.ts';
import { NbdError, protocolError } from './errors.ts';
import {
  decodeInfoReply,
  decodeMetaContextReply,
  decodeServerReply,
  type NbdBlockSizes,
  type NbdOptionReply,
} from './handshake-codec.ts';
import { HandshakeDecoder } from './handshake-decoder.ts';
import type { SocketInput } from './socket-input.ts';

export interface NbdExportInfo {
  readonly exportName: string;
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly blockSizes: NbdBlockSizes;
  /** Whether the server sent INFO_BLOCK_SIZE (then the client must obey it). */
  readonly blockSizesAdvertised: boolean;
  readonly structuredReplies: boolean;
  readonly tls: boolean;
  /** Selected metadata contexts: name → id (ids are per connection). */
  readonly metaContexts: ReadonlyMap<string, number>;
  /** What LIST_META_CONTEXT answered, when asked. */
  readonly availableMetaContexts?: readonly string[];
  /** What OPT_LIST answered, when asked. */
  readonly exports?: readonly { name: string; description: string }[];
  readonly description?: string;
  /** 'go' normally; 'export-name' on old servers without GO. */
  readonly negotiatedWith: 'go' | 'export-name';
}

export interface NbdHandshakeOptions {
  readonly exportName: string;
  /** Called after STARTTLS is acknowledged; returns the encrypted socket. */
  readonly startTls?: (socket: Socket) => Promise<Socket>;
  readonly metaContexts?: readonly string[];
  /** LIST_META_CONTEXT queries (e.g. ['base:', 'qemu:']) for diagnostics. */
  readonly listMetaContexts?: readonly string[];
  readonly listExports?: boolean;
}

/** Reads option replies off a socket through the incremental decoder. */
class HandshakeChannel {
  socket: Socket;
  readonly decoder = new HandshakeDecoder();
  #wake: (() => void) | undefined;
  #ended: Error | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.decoder.push(chunk);
    this.#wake?.();
  };
  readonly #onEnd = () => {
    this.#ended = new NbdError('NBD_CONNECTION_LOST', 'the server closed during the handshake', {
      retryable: true,
    });
    this.#wake?.();
  };
  readonly #onError = (error: Error) => {
    this.#ended = new NbdError('NBD_CONNECTION_LOST', `handshake: ${error.message}`, {
      cause: error,
      retryable: true,
    });
    this.#wake?.();
  };

  #input: SocketInput | undefined;

  constructor(socket: Socket, input: SocketInput | undefined) {
    this.socket = socket;
    this.#input = input;
    this.#attach();
  }

  #attach(): void {
    if (this.#input === undefined) this.socket.on('data', this.#onData);
    else this.#input.setChunkListener(this.#onData);
    this.socket.on('end', this.#onEnd);
    this.socket.on('close', this.#onEnd);
    this.socket.on('error', this.#onError);
  }

  detach(): void {
    this.#input?.setChunkListener(undefined);
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onError);
  }

  replace(socket: Socket): void {
    this.detach();
    this.socket = socket;
    this.#input = undefined;
    this.#ended = undefined;
    this.#attach();
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  async next<T>(read: () => T | undefined): Promise<T> {
    for (;;) {
      const value = read();
      if (value !== undefined) return value;
      if (this.#ended !== undefined) throw this.#ended;
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  reply(option: number): Promise<NbdOptionReply> {
    return this.next(() => this.decoder.readOptionReply(option));
  }
}

function optionErrorText(reply: NbdOptionReply): string {
  const text = reply.payload.toString('utf8', 0, Math.min(reply.payload.length, 4096));
  return `0x${reply.replyType.toString(16)}${text === '' ? '' : ` (${text})`}`;
}

function optionFailure(reply: NbdOptionReply, what: string): NbdError {
  if (reply.replyType === NBD_REP_ERR_TLS_REQD)
    return new NbdError('NBD_TLS_REQUIRED', `the server requires TLS (${what})`);
  if (reply.replyType === NBD_REP_ERR_UNKNOWN)
    return new NbdError('NBD_EXPORT_UNKNOWN', `${what}: no such export`);
  return new NbdError('NBD_HANDSHAKE', `${what} refused by the server: ${optionErrorText(reply)}`, {
    details: { replyType: reply.replyType },
  });
}

function isError(reply: NbdOptionReply): boolean {
  return (reply.replyType & NBD_REP_FLAG_ERROR) !== 0;
}

/**
 * Runs the handshake (reading through `input` when the socket was created with its onread);
 * returns the (possibly TLS) socket, leftover bytes and the export info. */
export async function runNbdHandshake(
  socket: Socket,
  options: NbdHandshakeOptions,
  input?: SocketInput,
): Promise<{ socket: Socket; leftover: Buffer; info: NbdExportInfo }> {
  const channel = new HandshakeChannel(socket, input);
  try {
    return await negotiate(channel, options);
  } finally {
    channel.detach();
  }
}

async function negotiate(
  channel: HandshakeChannel,
  options: NbdHandshakeOptions,
): Promise<{ socket: Socket; leftover: Buffer; info: NbdExportInfo }> {
  const greeting = await channel.next(() => channel.decoder.readGreeting());
  const noZeroes = (greeting.handshakeFlags & NBD_FLAG_NO_ZEROES) !== 0;
  channel.send(
    encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | (noZeroes ? NBD_FLAG_C_NO_ZEROES : 0)),
  );
  const { exportName } = options;

  let tls = false;
  if (options.startTls !== undefined) {
    channel.send(encodeOption(NBD_OPT_STARTTLS));
    const reply = await channel.reply(NBD_OPT_STARTTLS);
    if (reply.replyType !== NBD_REP_ACK) {
      throw new NbdError(
        'NBD_TLS_UNSUPPORTED',
        `the server refused STARTTLS: ${optionErrorText(reply)}`,
      );
    }
    if (channel.decoder.bufferedBytes !== 0)
      throw protocolError('bytes after the STARTTLS acknowledgement', 'STARTTLS');
    channel.detach();
    channel.replace(await options.startTls(channel.socket));
    tls = true;
  }

  let exports: { name: string; description: string }[] | undefined;
  if (options.listExports === true) {
    channel.send(encodeOption(NBD_OPT_LIST));
    const found: { name: string; description: string }[] = [];
    for (;;) {
      const reply = await channel.reply(NBD_OPT_LIST);
      if (reply.replyType === NBD_REP_SERVER) found.push(decodeServerReply(reply.payload));
      else if (reply.replyType === NBD_REP_ACK) {
        exports = found;
        break;
      } else if (isError(reply)) {
        if (reply.replyType === NBD_REP_ERR_TLS_REQD) throw optionFailure(reply, 'LIST');
        break; // listing refused by policy: not fatal
      }
    }
  }

  channel.send(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  const structuredReply = await channel.reply(NBD_OPT_STRUCTURED_REPLY);
  let structuredReplies = false;
  if (structuredReply.replyType === NBD_REP_ACK) structuredReplies = true;
  else if (structuredReply.replyType === NBD_REP_ERR_TLS_REQD)
    throw optionFailure(structuredReply, 'STRUCTURED_REPLY');

  let availableMetaContexts: string[] | undefined;
  if (options.listMetaContexts !== undefined && structuredReplies) {
    channel.send(
      encodeMetaContextOption(NBD_OPT_LIST_META_CONTEXT, exportName, options.listMetaContexts),
    );
    const names: string[] = [];
    for (;;) {
      const reply = await channel.reply(NBD_OPT_LIST_META_CONTEXT);
      if (reply.replyType === NBD_REP_META_CONTEXT)
        names.push(decodeMetaContextReply(reply.payload).name);
      else if (reply.replyType === NBD_REP_ACK) {
        availableMetaContexts = names;
        break;
      } else if (isError(reply)) {
        if (reply.replyType === NBD_REP_ERR_TLS_REQD || reply.replyType === NBD_REP_ERR_UNKNOWN)
          throw optionFailure(reply, 'LIST_META_CONTEXT');
        availableMetaContexts = [];
        break;
      }
    }
  }

  const metaContexts = new Map<string, number>();
  const wanted = options.metaContexts ?? [];
  if (wanted.length > 0) {
    if (!structuredReplies) {
      throw new NbdError(
        'NBD_NOT_SUPPORTED',
        'the server has no structured replies, hence no block status',
      );
    }
    channel.send(encodeMetaContextOption(NBD_OPT_SET_META_CONTEXT, exportName, wanted));
    for (;;) {
      const reply = await channel.reply(NBD_OPT_SET_META_CONTEXT);
      if (reply.replyType === NBD_REP_META_CONTEXT) {
        const context = decodeMetaContextReply(reply.payload);
        if (!wanted.includes(context.name))
          throw protocolError(`unrequested meta context ${context.name}`, 'meta context');
        metaContexts.set(context.name, context.contextId);
      } else if (reply.replyType === NBD_REP_ACK) break;
      else if (isError(reply)) throw optionFailure(reply, 'SET_META_CONTEXT');
    }
    const missing = wanted.filter((name) => !metaContexts.has(name));
    if (missing.length > 0) {
      throw new NbdError(
        'NBD_META_CONTEXT_UNAVAILABLE',
        `the export does not offer ${missing.join(', ')}`,
        { details: { missing, exportName } },
      );
    }
  }

  // GO with INFO requests; EXPORT_NAME on servers that do not know GO.
  channel.send(
    encodeInfoOption(NBD_OPT_GO, exportName, [
      NBD_INFO_BLOCK_SIZE,
      NBD_INFO_NAME,
      NBD_INFO_DESCRIPTION,
    ]),
  );
  let export_: { sizeBytes: number; transmissionFlags: number } | undefined;
  let blockSizes: NbdBlockSizes | undefined;
  let description: string | undefined;
  let negotiatedWith: 'go' | 'export-name' = 'go';
  for (;;) {
    const reply = await channel.reply(NBD_OPT_GO);
    if (reply.replyType === NBD_REP_INFO) {
      const info = decodeInfoReply(reply.payload);
      if (info.kind === 'export') export_ = info;
      else if (info.kind === 'block-size')
        blockSizes = {
          minimumBytes: info.minimumBytes,
          preferredBytes: info.preferredBytes,
          maximumPayloadBytes: info.maximumPayloadBytes,
        };
      else if (info.kind === 'description') description = info.description;
    } else if (reply.replyType === NBD_REP_ACK) {
      if (export_ === undefined)
        throw protocolError('GO acknowledged without INFO_EXPORT', 'INFO_EXPORT');
      break;
    } else if (reply.replyType === NBD_REP_ERR_UNSUP) {
      channel.send(encodeExportNameOption(exportName));
      export_ = await channel.next(() => channel.decoder.readExportNameReply(noZeroes));
      negotiatedWith = 'export-name';
      break;
    } else if (isError(reply)) {
      if (reply.replyType === NBD_REP_ERR_BLOCK_SIZE_REQD || reply.replyType === NBD_REP_ERR_POLICY)
        throw optionFailure(reply, 'GO');
      throw optionFailure(reply, `GO for export "${exportName}"`);
    } else {
      // Unknown success reply types are skipped (reference §3.4).
    }
  }
  const info: NbdExportInfo = {
    exportName,
    sizeBytes: export_.sizeBytes,
    transmissionFlags: export_.transmissionFlags,
    blockSizes: blockSizes ?? {
      minimumBytes: NBD_DEFAULT_MIN_BLOCK_BYTES,
      preferredBytes: NBD_DEFAULT_PREFERRED_BLOCK_BYTES,
      maximumPayloadBytes: NBD_DEFAULT_MAX_PAYLOAD_BYTES,
    },
    blockSizesAdvertised: blockSizes !== undefined,
    structuredReplies,
    tls,
    metaContexts,
    negotiatedWith,
    ...(availableMetaContexts === undefined ? {} : { availableMetaContexts }),
    ...(exports === undefined ? {} : { exports }),
    ...(description === undefined ? {} : { description }),
  };
  return { socket: channel.socket, leftover: channel.decoder.drain(), info };
}
