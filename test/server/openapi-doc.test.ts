// docs/openapi.json is the document the server serves, generated from the route registrations
// (the same zod schemas validate the bodies); every route has a summary, and every body-taking
// route documents its JSON Schema and its 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { renderOpenApiDoc } from '../../scripts/openapi-doc.ts';

interface Operation {
  summary?: string;
  requestBody?: { content: { 'application/json': { schema: unknown } } };
  responses: Record<string, unknown>;
}

test('docs/openapi.json is generated from the routes and documents every body', async () => {
  const onDisk = await readFile(new URL('../../docs/openapi.json', import.meta.url), 'utf8');
  assert.deepEqual(
    JSON.parse(onDisk),
    JSON.parse(renderOpenApiDoc()),
    'run `npm run openapi:doc` and commit docs/openapi.json',
  );
  const doc = JSON.parse(onDisk) as {
    openapi: string;
    paths: Record<string, Record<string, Operation>>;
  };
  assert.equal(doc.openapi, '3.1.0');
  let operations = 0;
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      operations += 1;
      assert.ok((op.summary ?? '').length > 5, `${method} ${path} has a summary`);
      if (op.requestBody !== undefined) {
        const schema = op.requestBody.content['application/json'].schema as Record<string, unknown>;
        assert.ok(
          schema['type'] === 'object' || Array.isArray(schema['oneOf'] ?? schema['anyOf']),
          `${method} ${path} body schema`,
        );
        assert.ok(op.responses['400'] !== undefined, `${method} ${path} documents its 400`);
      }
    }
  }
  assert.ok(operations >= 30, `${operations} operations`);
  const job = doc.paths['/api/jobs/{id}']?.['put']?.requestBody?.content['application/json']
    .schema as { properties?: Record<string, unknown> } | undefined;
  assert.ok(job?.properties?.['settings'] !== undefined, 'the job schema is documented');
});
