/**
 * src/hypervisor/xapi — the XenServer / XCP-ng client: JSON-RPC sessions (HOST_IS_SLAVE,
 * SESSION_INVALID, typed errors), tasks, the export_raw_vdi / import_raw_vdi handlers, records and
 * typed helpers for VMs, disks, snapshots, CBT, NBD info and networks. Pure codecs: the XML-RPC
 * value parser (task results) and the CBT bitmap decoder. On these, the backup source
 * (`XapiHypervisor`, the Hypervisor seam): snapshot points, CBT + NBD / VHD BAT + NBD / VHD stream
 * deltas with structured full reasons, commit/abort hygiene, and restores (docs/design.md §6.3).
 */
export * from './errors.ts';
export * from './constants.ts';
export * from './xmlrpc-value.ts';
export * from './json-rpc.ts';
export * from './cbt-bitmap.ts';
export * from './tls-trust.ts';
export * from './secret.ts';
export * from './session.ts';
export * from './tasks.ts';
export * from './export-check.ts';
export * from './vdi-transfer.ts';
export * from './records.ts';
export * from './inventory.ts';
export * from './snapshots.ts';
export * from './cbt.ts';
export * from './nbd-info.ts';
export * from './networks.ts';
export * from './vm-operations.ts';
export * from './nbd-reader.ts';
export * from './stream-disks.ts';
export * from './point-source.ts';
export * from './point-catalogue.ts';
export * from './xapi-point.ts';
export * from './vm-metadata.ts';
export * from './vif-restore.ts';
export * from './xapi-restore.ts';
export * from './xapi-hypervisor.ts';
export * from './lazy-source.ts';
