/**
 * Writes docs/openapi.json from the API's route registrations (npm run openapi:doc; prettier may
 * reformat it: the test compares the parsed documents).
 */
import { writeFileSync } from 'node:fs';
import packageJson from '../package.json' with { type: 'json' };
import { openApiDocument } from '../src/server/index.ts';

export function renderOpenApiDoc(): string {
  return `${JSON.stringify(openApiDocument(packageJson.version), null, 2)}\n`;
}

if (process.argv[1]?.endsWith('openapi-doc.ts') === true) {
  writeFileSync(new URL('../docs/openapi.json', import.meta.url), renderOpenApiDoc());
}
