/**
 * src/hypervisor/qemu — the QEMU/KVM source: a QMP client (greeting, capabilities, ids, events,
 * timeouts, reconnects), disk discovery, atomic backup points (one transaction: new persistent
 * bitmap, previous frozen, fleecing into temporary overlays) exported read-only over QEMU's NBD
 * server, commit/abort/teardown and crash leftovers, stopped machines via qemu-nbd -B, restore.
 */
export * from './errors.ts';
export * from './qmp-client.ts';
export * from './qmp-session.ts';
export * from './qmp-types.ts';
export * from './names.ts';
export * from './discovery.ts';
export * from './plan.ts';
export * from './nbd-server.ts';
export * from './teardown.ts';
export * from './leftovers.ts';
export * from './live-point.ts';
export * from './offline-point.ts';
export * from './qemu-tools.ts';
export * from './restore.ts';
export * from './qemu-hypervisor.ts';
