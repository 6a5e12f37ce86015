/**
 * src/disk — the Disk seam (a stream of blocks: virtual size, block size, present or changed block
 * indexes, async iterable of {index, data}) with its implementations (memory, NBD, VHD, files) and
 * wrappers that keep the shape (throttle, read-ahead, re-blocking, hashing).
 */
export * from './block-set.ts';
export * from './block-buffers.ts';
export * from './disk.ts';
export * from './memory-disk.ts';
export * from './disk-tee.ts';
export * from './throttled-disk.ts';
export * from './nbd-disk.ts';
export * from './nbd-sink.ts';
export * from './vhd-disk.ts';
export * from './read-ahead.ts';
export * from './raw-file-disk.ts';
