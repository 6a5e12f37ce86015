/**
 * The NBD reader and writer the QEMU (and plain NBD) sources depend on, as injected functions:
 * the real ones are `openNbdDisk`/`openNbdSink` of src/disk (wired in app, whose result types are
 * re-exported here); tests may pass a stand-in (e.g. one built on nbdinfo/nbdcopy as an oracle)
 * or count connections.
 */
import type { NbdDisk, NbdSink } from '../disk/index.ts';

export type { NbdTransportInfo } from '../disk/index.ts';

export interface OpenNbdDiskOptions<TTls = unknown> {
  readonly uri: string;
  readonly blockSizeBytes: number;
  /** full: blocks from base:allocation; delta: blocks from qemu:dirty-bitmap:<dirtyBitmap>. */
  readonly mode:
    { readonly kind: 'full' } | { readonly kind: 'delta'; readonly dirtyBitmap: string };
  readonly connections?: number;
  /** Client TLS settings, passed through unchanged from the source's configuration. */
  readonly tls?: TTls;
  readonly maxInFlightBytes?: number;
  readonly signal?: AbortSignal;
}

export type { NbdDisk, NbdSink } from '../disk/index.ts';

/**
 * `TTls` is the reader's TLS options type (src/nbd NbdTlsOptions for the real one), so
 * `openNbdDisk` is assignable as is and `clientTls` is checked against it.
 */
export type OpenNbdDisk<TTls = unknown> = (options: OpenNbdDiskOptions<TTls>) => Promise<NbdDisk>;

export interface OpenNbdSinkOptions<TTls = unknown> {
  readonly uri: string;
  readonly tls?: TTls;
  readonly connections?: number;
  readonly maxInFlightBytes?: number;
  readonly signal?: AbortSignal;
}

export type OpenNbdSink<TTls = unknown> = (options: OpenNbdSinkOptions<TTls>) => Promise<NbdSink>;
