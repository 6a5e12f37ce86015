/**
 * Block hash algorithms (docs/design.md §4.1, §4.4, §4.10): the repository config names one, and
 * every block of the repository is named, deduplicated and checked by it. `blake3` is the default
 * of new repositories (4× faster than sha256 with SHA-NI here, for the same 256-bit strength);
 * `sha256` repositories stay readable and writable. Pure: bytes in, digest out.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { HASH_BLAKE3, HASH_SHA256 } from './constants.ts';

export const BLOCK_HASH_NAMES = ['sha256', 'blake3'] as const;
export type BlockHashName = (typeof BLOCK_HASH_NAMES)[number];
export const DEFAULT_BLOCK_HASH: BlockHashName = 'blake3';

type Blake3Binding = typeof import('@napi-rs/blake-hash');
// Resolved by path so the block workers (plain CommonJS kernels) load the same binding.
const blake3Require = createRequire(import.meta.url);
export const blake3BindingPath = blake3Require.resolve('@napi-rs/blake-hash');
const blake3Binding = blake3Require(blake3BindingPath) as Blake3Binding;

/** The 32-byte digest of `data` by `name`. */
export function hashBlock(data: Uint8Array, name: BlockHashName): Buffer {
  return name === 'blake3'
    ? blake3Binding.blake3(data)
    : createHash('sha256').update(data).digest();
}

/** The code of a hash algorithm in an index header (§4.5). */
export function hashAlgorithmCode(name: BlockHashName): number {
  return name === 'blake3' ? HASH_BLAKE3 : HASH_SHA256;
}

/** The algorithm of an index header's code, or undefined for an unknown code. */
export function hashAlgorithmOfCode(code: number): BlockHashName | undefined {
  return code === HASH_BLAKE3 ? 'blake3' : code === HASH_SHA256 ? 'sha256' : undefined;
}
