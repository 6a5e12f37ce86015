/**
 * src/app — the composition root: configuration, the embedded job store, registries that choose
 * implementations (stores, sources), and the use-case functions shared by the CLI and the server.
 */
export * from './job-store.ts';
