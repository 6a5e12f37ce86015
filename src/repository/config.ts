/** The repository config object (docs/design.md §4.1): schema, parse and format. */
import { z } from 'zod';
import { isPowerOfTwo } from '../core/index.ts';
import {
  CONFIG_FORMAT,
  FORMAT_VERSION,
  MAX_BLOCK_SIZE_BYTES,
  MIN_BLOCK_SIZE_BYTES,
} from './constants.ts';
import { BLOCK_HASH_NAMES } from './block-hash.ts';
import { RepositoryError } from './errors.ts';

/** Block compression of a repository (§4.1): none, or zstd at a level (negative = faster). */
export const compressionSchema = z.discriminatedUnion('codec', [
  z.object({ codec: z.literal('none') }).strict(),
  z.object({ codec: z.literal('zstd'), level: z.number().int().min(-7).max(19) }).strict(),
]);

export const repositoryConfigSchema = z
  .object({
    format: z.literal(CONFIG_FORMAT),
    formatVersion: z.literal(FORMAT_VERSION),
    repositoryId: z.string().regex(/^[0-9a-f]{32}$/),
    createdMs: z.number().int().nonnegative(),
    blockSizeBytes: z
      .number()
      .int()
      .min(MIN_BLOCK_SIZE_BYTES)
      .max(MAX_BLOCK_SIZE_BYTES)
      .refine(isPowerOfTwo, 'must be a power of two'),
    hash: z.enum(BLOCK_HASH_NAMES),
    compression: compressionSchema,
    /** Reserved: null in format version 1 (no encryption yet). */
    encryption: z.null(),
  })
  .strict();

export type RepositoryConfig = z.infer<typeof repositoryConfigSchema>;
export type CompressionConfig = RepositoryConfig['compression'];

export function parseRepositoryConfig(key: string, body: Buffer): RepositoryConfig {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (cause) {
    throw new RepositoryError('REPO_CONFIG_INVALID', `${key}: not JSON`, {
      cause,
      details: { key },
    });
  }
  const parsed = repositoryConfigSchema.safeParse(value);
  if (!parsed.success) {
    throw new RepositoryError('REPO_CONFIG_INVALID', `${key}: ${parsed.error.message}`, {
      details: { key, issues: parsed.error.issues.map((issue) => issue.path.join('.')) },
    });
  }
  return parsed.data;
}

export function formatRepositoryConfig(config: RepositoryConfig): Buffer {
  return Buffer.from(`${JSON.stringify(config, null, 2)}\n`);
}
