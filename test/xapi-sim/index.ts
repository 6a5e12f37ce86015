/**
 * The XAPI simulator (test tree only, never shipped): a JSON-RPC and HTTP(S) server that plays a
 * two-host XCP-ng pool for the XAPI client's tests, with disk images on files, CBT computed from
 * real writes, NBD served by qemu-nbd with TLS, and fault toggles. See docs/xapi.md.
 */
export * from './simulator.ts';
export * from './sim-context.ts';
export * from './pool-db.ts';
export * from './cbt-tracker.ts';
export * from './xmlrpc-format.ts';
export * from './vhd-encoder.ts';
