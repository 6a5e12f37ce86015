/**
 * src/hypervisor — the Hypervisor seam (machines and disks with stable ids; backup points that
 * freeze every disk of a machine at one instant and yield key or delta block streams with the
 * transport and the reason for any full; commit/abort; restore) and its implementations: qemu/
 * (QMP, dirty bitmaps, fleecing, NBD exports), xapi/, nbd/ (plain exports) and fake/ (in memory).
 */
export * from './hypervisor.ts';
export * from './machine-metadata.ts';
export * from './errors.ts';
export * from './request.ts';
export * from './fake/index.ts';
export * from './open-nbd-disk.ts';
export * from './qemu/index.ts';
export * from './xapi/index.ts';
