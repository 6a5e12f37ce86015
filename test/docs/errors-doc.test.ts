import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { renderErrorsDoc } from '../../scripts/errors-doc.ts';
import { errorCatalogues } from '../../scripts/error-catalogues.ts';

test('docs/errors.md is generated from the error catalogues', async () => {
  const onDisk = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  assert.equal(onDisk, renderErrorsDoc(), 'run `npm run errors:doc` and commit docs/errors.md');
});

test('error codes are unique across layers and upper snake case', () => {
  const seen = new Map<string, string>();
  for (const { layer, catalogue } of errorCatalogues) {
    for (const code of Object.keys(catalogue)) {
      assert.match(code, /^[A-Z][A-Z0-9_]+$/);
      assert.equal(seen.get(code), undefined, `${code} defined in ${seen.get(code)} and ${layer}`);
      seen.set(code, layer);
    }
  }
});

async function* sourceFiles(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

test('every error catalogue in src is listed in scripts/error-catalogues.ts', async () => {
  const listed = new Set(errorCatalogues.flatMap(({ catalogue }) => Object.keys(catalogue)));
  const root = new URL('../../src', import.meta.url).pathname;
  for await (const file of sourceFiles(root)) {
    const text = await readFile(file, 'utf8');
    for (const match of text.matchAll(
      /export const (\w+Errors) = \{([\s\S]*?)\} as const satisfies ErrorCatalogue/g,
    )) {
      for (const codeMatch of (match[2] ?? '').matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)) {
        assert.ok(
          listed.has(codeMatch[1] ?? ''),
          `${codeMatch[1]} (${match[1]} in ${file}) is not in scripts/error-catalogues.ts`,
        );
      }
    }
  }
});
