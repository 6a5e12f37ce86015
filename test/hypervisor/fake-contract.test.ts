// The seam's contract against the in-memory fake hypervisor.
import { KiB, MiB } from '../../src/core/index.ts';
import { FakeHypervisor } from '../../src/hypervisor/index.ts';
import { defineHypervisorContract } from './contract.ts';

defineHypervisorContract('fake', async () => {
  const hypervisor = new FakeHypervisor([
    {
      id: 'vm1',
      disks: [
        { id: 'disk0', sizeBytes: 8 * MiB },
        { id: 'disk1', sizeBytes: 8 * MiB },
      ],
    },
  ]);
  return {
    hypervisor,
    machineId: 'vm1',
    diskIds: ['disk0', 'disk1'],
    diskSizeBytes: 8 * MiB,
    granularityBytes: 64 * KiB,
    write: async (diskId, offsetBytes, lengthBytes, pattern) => {
      hypervisor.write('vm1', diskId, offsetBytes, Buffer.alloc(lengthBytes, pattern));
    },
    crashDuringPoint: async (request) => {
      await hypervisor.startBackupPoint('vm1', request); // never committed nor aborted
      hypervisor.simulateCrash();
    },
    restart: async () => {
      hypervisor.simulateCrash();
    },
    leftovers: async (scope) => hypervisor.inspect('vm1', scope).temporaries,
    references: async (scope) => hypervisor.inspect('vm1', scope).trackers,
    close: () => hypervisor.close(),
  };
});
