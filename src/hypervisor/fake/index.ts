export * from './fake-hypervisor.ts';
export * from './fake-state.ts';
