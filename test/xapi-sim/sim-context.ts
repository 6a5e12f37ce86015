/** XAPI-simulator side: the state shared by the RPC methods and the HTTP handlers, and the fault toggles. */
import type { CbtPosition, CbtTracker } from './cbt-tracker.ts';
import type { PoolDb } from './pool-db.ts';
import type { SimEventLog } from './sim-events.ts';

/** Fault and behaviour toggles; tests flip them between calls. */
export interface SimFaults {
  /** Sessions idle longer than this are invalid (SESSION_INVALID). */
  sessionTtlMs: number | undefined;
  /** VDI uuid → how many more destroy/data_destroy calls fail with VDI_IN_USE. */
  readonly vdiInUse: Map<string, number>;
  /** export_raw_vdi / import_raw_vdi on the master answer 302 to the member host. */
  redirectTransfers: boolean;
  /** Every host answers transfers with a 302 to the other one (a redirect loop). */
  redirectTransfersForever: boolean;
  /** The next exports answer 200 with an embedded "HTTP/1.1 500" body (xen-api #4603). */
  embedErrorInExport: boolean;
  /** Exports close the connection after this many body bytes. */
  truncateExportAfterBytes: number | undefined;
  /** The host predates VM.snapshot's ignore_vdis (MESSAGE_PARAMETER_COUNT_MISMATCH). */
  noIgnoreVdis: boolean;
  /** JSON-RPC error form: 2.0 ({code, message, data}) or 1.0 ([code, ...params]). */
  errorStyle: '2.0' | '1.0';
  /** Integers (virtual_size...) travel as decimal strings instead of numbers. */
  intsAsStrings: boolean;
  /** NBD connections are cut after this many bytes sent to the client. */
  dropNbdAfterBytes: number | undefined;
  /** Delay before an Async task runs (the client must poll). */
  asyncDelayMs: number;
  /** export_raw_vdi refuses every `base=` (XAPI cannot compute the delta). */
  refuseVhdBase: boolean;
}

export function defaultFaults(): SimFaults {
  return {
    sessionTtlMs: undefined,
    vdiInUse: new Map(),
    redirectTransfers: false,
    redirectTransfersForever: false,
    embedErrorInExport: false,
    truncateExportAfterBytes: undefined,
    noIgnoreVdis: false,
    errorStyle: '2.0',
    intsAsStrings: false,
    dropNbdAfterBytes: undefined,
    asyncDelayMs: 20,
    refuseVhdBase: false,
  };
}

export interface SimNbdEntry {
  readonly address: string;
  readonly port: number;
  readonly cert: string;
  readonly exportname: string;
  readonly subject: string;
}

export interface SimVhdEncoderInput {
  readonly path: string;
  readonly virtualSizeBytes: number;
  /** Image of the base VDI, for a differencing VHD (export with base=). */
  readonly basePath?: string;
}

/**
 * Produces a VHD stream of a raw image (the VHD writer from the VHD codec work is injected
 * here; until then format=vhd answers 500 and fails the task).
 */
export type SimVhdEncoder = (
  input: SimVhdEncoderInput,
) => Promise<{ readonly stream: NodeJS.ReadableStream; readonly lengthBytes?: number }>;

export interface SimContext {
  readonly db: PoolDb;
  readonly cbt: CbtTracker;
  readonly faults: SimFaults;
  readonly events: SimEventLog;
  readonly credentials: { readonly username: string; readonly password: string };
  readonly sessions: Map<string, { username: string; lastUsedMs: number }>;
  /** Snapshot VDI ref → its place in its live disk's CBT chain. */
  readonly cbtPositions: Map<string, CbtPosition>;
  /** Master's address as HOST_IS_SLAVE reports it. */
  readonly masterAddress: string;
  /** Base URL of each host: 'master' and 'member'. */
  hostUrl(host: 'master' | 'member'): string;
  /** Starts (once) the NBD server of a VDI and returns one entry per address. */
  nbdInfo(vdiRef: string, addresses: readonly string[]): Promise<SimNbdEntry[]>;
  /** Stops a VDI's NBD server (VDI destroyed or data_destroyed). */
  stopNbd(vdiRef: string): Promise<void>;
  readonly vhdEncoder: SimVhdEncoder | undefined;
  /** Records a write to a live VDI (CBT) — called by writeToVdi and import. */
  recordWrite(vdiRef: string, offsetBytes: number, lengthBytes: number): void;
}
