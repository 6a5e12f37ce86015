// The seam's contract against the XAPI source on the simulator (CBT + NBD with TLS, qemu-nbd).
import { defineHypervisorContract } from './contract.ts';
import { makeXapiSubject } from './xapi-subject.ts';

defineHypervisorContract('xapi', () => makeXapiSubject());
