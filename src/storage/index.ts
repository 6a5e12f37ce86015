/**
 * src/storage — the ObjectStore seam and its implementations (local folder, S3, memory) and
 * wrappers with the same interface (retry, concurrency limit, bandwidth limit, fault injection).
 */
export * from './object-store.ts';
export * from './errors.ts';
export * from './object-key.ts';
export * from './byte-range.ts';
export * from './memory-store.ts';
export * from './fault-injecting-store.ts';
export * from './local-store.ts';
export * from './retrying-store.ts';
export * from './limited-store.ts';
export * from './throttled-store.ts';
export * from './open-store.ts';
