/**
 * Constants of the vmdelta repository format, version 1. The format is specified in
 * docs/design.md §4 ("Repository format"); every value here is referenced from there.
 */
import { MiB } from '../core/index.ts';

/** §4.1: the repository config object, the first object of every repository. */
export const CONFIG_KEY = 'vmdelta-repository.json';
export const CONFIG_FORMAT = 'vmdelta-repository';
export const FORMAT_VERSION = 1;

/** §4.2: top-level prefixes. Manifests and leases are kept apart from data so listing them is cheap. */
export const POINTS_PREFIX = 'points/';
export const LEASES_PREFIX = 'leases/';
export const DATA_PREFIX = 'data/';

/** §4.1: defaults chosen by measurement (see §4.10). */
export const DEFAULT_BLOCK_SIZE_BYTES = 2 * MiB;
export const DEFAULT_ZSTD_LEVEL = -1;
export const MIN_BLOCK_SIZE_BYTES = 512;
export const MAX_BLOCK_SIZE_BYTES = 64 * MiB;

/** §4.4: block objects. "VDB1". */
export const BLOCK_MAGIC = 0x56444231;
export const BLOCK_VERSION = 1;
export const BLOCK_HEADER_BYTES = 48;
export const CODEC_NONE = 0;
export const CODEC_ZSTD = 1;
/** A compressed payload is kept only if it saves at least this share of the block (§4.10). */
export const MIN_COMPRESSION_SAVING = 1 / 16;

/** §4.5: index objects. "VDI1". */
export const INDEX_MAGIC = 0x56444931;
export const INDEX_VERSION = 1;
export const INDEX_HEADER_BYTES = 48;
export const INDEX_ENTRY_BYTES = 36;
export const INDEX_TRAILER_BYTES = 32;
export const INDEX_KIND_KEY = 1;
export const INDEX_KIND_DELTA = 2;
export const HASH_SHA256 = 1;
export const HASH_BLAKE3 = 2;
export const HASH_BYTES = 32;
/** baseSeq of a key index. */
export const NO_BASE_SEQ = 0xffffffff;
export const MAX_SEQ = 0xfffffffe;

/** §4.3: ids. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
export const CHAIN_ID_PATTERN = /^[0-9a-f]{32}$/;

/** §4.8: objects younger than this are never swept by GC (writers in progress). */
export const DEFAULT_GC_SAFETY_WINDOW_MS = 24 * 3600 * 1000;

/** §4.9: leases. */
export const DEFAULT_LEASE_DURATION_MS = 10 * 60 * 1000;
/** Settle delay of the lease fallback for stores without atomic put-if-absent. */
export const DEFAULT_LEASE_SETTLE_MS = 2000;
