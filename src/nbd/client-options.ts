/** Options and defaults of one NBD connection's requests. */

export interface NbdWriteOptions {
  readonly fua?: boolean;
}
export interface NbdZeroOptions extends NbdWriteOptions {
  /** Allocate instead of punching holes (NO_HOLE). */
  readonly noHole?: boolean;
  /** Fail fast with ENOTSUP unless zeroing is cheap (FAST_ZERO). */
  readonly fastZero?: boolean;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;
/**
 * READ requests on the wire are at most 256 KiB by default (nbdcopy's default too): qemu-nbd
 * streams many 256 KiB requests about twice as fast as 2 MiB ones (bench/nbd-read.ts).
 */
export const DEFAULT_READ_REQUEST_BYTES = 256 * 1024;
/**
 * Requests on the wire per connection (more wait in a client-side queue). QEMU serves 16 at a time
 * (MAX_NBD_REQUESTS); twice that keeps the server busy across a round trip, while 64-256 measured
 * slower against a local qemu-nbd.
 */
export const DEFAULT_MAX_REQUESTS_IN_FLIGHT = 32;
