/**
 * Every error catalogue of the product, by layer. docs/errors.md is generated from this list
 * (npm run errors:doc) and test/docs/errors-doc.test.ts fails when the two disagree.
 * Add a layer's catalogue here when the layer defines one.
 */
import type { ErrorCatalogue } from '../src/core/index.ts';
import { coreErrors } from '../src/core/index.ts';
import { binaryErrors } from '../src/binary/index.ts';
import { vhdErrors } from '../src/vhd/index.ts';
import { nbdErrors } from '../src/nbd/index.ts';
import { storageErrors } from '../src/storage/index.ts';
import { repositoryErrors } from '../src/repository/index.ts';
import { hypervisorErrors, qmpErrors } from '../src/hypervisor/index.ts';
import { xapiErrors } from '../src/hypervisor/xapi/index.ts';
import { jobErrors } from '../src/jobs/index.ts';
import { appErrors } from '../src/app/index.ts';
import { serverErrors } from '../src/server/index.ts';

export const errorCatalogues: readonly { layer: string; catalogue: ErrorCatalogue }[] = [
  { layer: 'core', catalogue: coreErrors },
  { layer: 'binary', catalogue: binaryErrors },
  { layer: 'vhd', catalogue: vhdErrors },
  { layer: 'nbd', catalogue: nbdErrors },
  { layer: 'storage', catalogue: storageErrors },
  { layer: 'repository', catalogue: repositoryErrors },
  { layer: 'hypervisor', catalogue: hypervisorErrors },
  { layer: 'hypervisor/qemu (QMP)', catalogue: qmpErrors },
  { layer: 'hypervisor/xapi', catalogue: xapiErrors },
  { layer: 'jobs', catalogue: jobErrors },
  { layer: 'app', catalogue: appErrors },
  { layer: 'server (HTTP API)', catalogue: serverErrors },
];
