/**
 * The NBD reader the QEMU (and plain NBD) sources depend on, as a type: the real one is
 * `openNbdDisk` of src/disk (wired in app); tests pass a stand-in. Keeping it injected lets this
 * layer be built and tested without the NBD client, and lets tests count connections.
 */
import type { DiskSink, DiskSource } from '../disk/index.ts';

export interface NbdTransportInfo {
  readonly protocol: 'nbd';
  readonly connections: number;
  readonly tls: boolean;
  /** NBD URI without secrets. */
  readonly uri: string;
  readonly exportSizeBytes: number;
  readonly multiConn: boolean;
}

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

export interface NbdDisk extends DiskSource {
  readonly transport: NbdTransportInfo;
}

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

/** A writable NBD export as a DiskSink (src/disk NbdSink): the target of a restore. */
export interface NbdSink extends DiskSink {
  readonly transport: NbdTransportInfo;
}

export type OpenNbdSink<TTls = unknown> = (options: OpenNbdSinkOptions<TTls>) => Promise<NbdSink>;
