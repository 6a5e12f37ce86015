/**
 * src/repository — the vmdelta repository format on an ObjectStore (docs/design.md §4): config,
 * key layout, block and index codecs, restore-point manifests, backup writing, restore points as
 * DiskSources, merges (point removal), retention (pure plan + execution), GC, verify, leases and
 * copy between repositories.
 */
export * from './constants.ts';
export * from './errors.ts';
export * from './config.ts';
export * from './keys.ts';
export * from './block-hash.ts';
export * from './block-codec.ts';
export * from './index-codec.ts';
export * from './index-fold.ts';
export * from './manifest.ts';
export * from './chain-state.ts';
export * from './folded-disk.ts';
export * from './repository.ts';
export * from './point-disk.ts';
export * from './backup-writer.ts';
export * from './point-removal.ts';
export * from './retention.ts';
export * from './retention-run.ts';
export * from './gc.ts';
export * from './verify.ts';
export * from './lease.ts';
export * from './copy.ts';
