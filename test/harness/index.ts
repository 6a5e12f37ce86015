/**
 * Test harness: real servers (qemu-nbd, nbdkit, qemu-storage-daemon; Swift S3 in storage tests)
 * started on unix sockets or 127.0.0.1 and stopped by pid, TLS certificates per run, images made
 * with qemu-img/qemu-io, and tool lookup that fails (never skips) when a tool is missing.
 */
export * from './tools.ts';
export * from './tmp.ts';
export * from './process.ts';
export * from './pki.ts';
export * from './images.ts';
export * from './nbd-servers.ts';
export * from './swift.ts';
export * from './s3rver.ts';
