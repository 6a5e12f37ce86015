// The conformance suite against the in-memory store.
import { MemoryObjectStore } from '../../src/storage/index.ts';
import { describeObjectStoreConformance } from './conformance.ts';

describeObjectStoreConformance('memory', async () => ({
  store: new MemoryObjectStore(),
  cleanup: async () => undefined,
}));
