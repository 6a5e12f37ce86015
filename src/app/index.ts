/**
 * src/app — the composition root: configuration, the embedded job store, registries that choose
 * implementations (stores, sources), and the use-case functions shared by the CLI and the server.
 */
export * from './job-store.ts';
export * from './errors.ts';
export * from './config-schema.ts';
export * from './registry.ts';
export * from './app.ts';
export * from './backup-use-cases.ts';
export * from './vhd-export.ts';
