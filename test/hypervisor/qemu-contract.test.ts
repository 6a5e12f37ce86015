// The seam's contract against the QEMU source on a real qemu-storage-daemon (two qcow2 disks).
import { defineHypervisorContract } from './contract.ts';
import { makeQemuSubject } from './qemu-subject.ts';

defineHypervisorContract('qemu', () => makeQemuSubject());
