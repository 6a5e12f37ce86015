/**
 * src/nbd — the NBD client: a pure codec (encoders, incremental handshake and reply decoders that
 * accept any split of the byte stream), and thin I/O around it: one connection (STARTTLS with real
 * verification, GO with block sizes, structured replies, meta contexts, pipelined requests matched
 * by cookie), a pool of connections with retry, extent-map iteration, and NBD URIs.
 */
export * from './constants.ts';
export * from './errors.ts';
export * from './byte-queue.ts';
export * from './encode.ts';
export * from './handshake-codec.ts';
export * from './handshake-decoder.ts';
export * from './reply-decoder.ts';
export * from './uri.ts';
export * from './tls.ts';
export * from './handshake.ts';
export * from './client.ts';
export * from './connect.ts';
export * from './pool.ts';
export * from './extents.ts';
