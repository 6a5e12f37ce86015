/** Writes docs/errors.md from the error catalogues (npm run errors:doc). */
import { writeFile } from 'node:fs/promises';
import { errorCatalogues } from './error-catalogues.ts';

export function renderErrorsDoc(): string {
  const lines = [
    '# Error codes',
    '',
    'Generated from the error catalogues in `src/*/errors.ts` by `npm run errors:doc`; a test fails',
    'when this file and the code disagree. Every error vmdelta raises on purpose carries one of these',
    'stable codes (shown as `[CODE]` by the CLI and as `code` in JSON output and the HTTP API).',
    '',
  ];
  for (const { layer, catalogue } of errorCatalogues) {
    lines.push(`## ${layer}`, '', '| Code | Meaning |', '|---|---|');
    for (const [code, meaning] of Object.entries(catalogue))
      lines.push(`| \`${code}\` | ${meaning} |`);
    lines.push('');
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1] ?? ''}`) {
  await writeFile(new URL('../docs/errors.md', import.meta.url), renderErrorsDoc());
}
