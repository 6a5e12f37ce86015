/**
 * src/jobs — runners (backup, restore, merge, copy, verify) over the Hypervisor and repository
 * seams, the pure policies they apply (key or delta per disk and remote), typed job events and
 * the structured run log.
 */
export * from './errors.ts';
export * from './job-definition.ts';
export * from './backup-decision.ts';
export * from './run-log.ts';
export * from './job-events.ts';
export * from './remote-state.ts';
export * from './machine-backup.ts';
export * from './backup-run.ts';
export * from './counting-disk.ts';
export * from './logged-error.ts';
