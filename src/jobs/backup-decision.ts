/**
 * Pure policy: for one disk of one run, decide per remote whether to write a key (full) or a
 * delta backup, and what the run must read from the source. Execution is elsewhere.
 *
 * Rules, in order (the first that applies gives the reason):
 * 1. FORCED            the run or schedule forces a key backup.
 * 2. NO_BASE           the remote holds no restore point of this disk (new disk, new remote, or
 *                      its chain was removed).
 * 3. SIZE_CHANGED      the disk's size differs from the remote's last restore point.
 * 4. KEY_INTERVAL      fullInterval > 0 and the chain already holds fullInterval backups since
 *                      its key (merges do not reset this count: a key interval bounds how long a
 *                      corrupted block can live, and merged blocks live on in the key).
 * 5. delta by tracker  the source offers a change tracker whose base is the remote's last point.
 * 6. delta by hash     the source offers no usable tracker (its reason is logged): every block is
 *                      read and only blocks whose hash differs from the remote's last point are
 *                      stored.
 * A remote that needs a key does not force keys on the others: the run reads the full disk
 * once and writes only the changed blocks to the remotes that take a delta.
 */

export type KeyReason = 'FORCED' | 'NO_BASE' | 'SIZE_CHANGED' | 'KEY_INTERVAL';

/** Where the changed blocks of a delta come from. */
export type DeltaMethod = 'tracker' | 'hash-compare';

export interface RemoteDiskState {
  readonly remoteId: string;
  /** The remote's newest restore point of this disk, if any. */
  readonly last?: {
    /** The source reference (bitmap, snapshot) that point was taken from. */
    readonly sourceReference: string | undefined;
    readonly sizeBytes: number;
    /** Backups written to this chain since its key, merged ones included. */
    readonly chainBackupCount: number;
  };
}

export interface SourceDiskState {
  readonly sizeBytes: number;
  /**
   * The reference the source can compute changes from (e.g. the bitmap of the previous backup),
   * or undefined when it cannot produce a delta; then `noDeltaReason` says why.
   */
  readonly deltaBase: string | undefined;
  readonly noDeltaReason?: string;
}

export type RemoteDecision =
  | { readonly remoteId: string; readonly kind: 'key'; readonly reason: KeyReason }
  | {
      readonly remoteId: string;
      readonly kind: 'delta';
      readonly method: DeltaMethod;
      /** Why a tracker could not be used (hash-compare only). */
      readonly reason?: string;
    };

export interface DiskDecision {
  readonly remotes: readonly RemoteDecision[];
  /** 'delta': read only the tracker's changed blocks; 'full': read every allocated block. */
  readonly read: 'full' | 'delta';
}

export function decideDiskBackup(options: {
  readonly fullInterval: number;
  readonly forceFull: boolean;
  readonly source: SourceDiskState;
  readonly remotes: readonly RemoteDiskState[];
}): DiskDecision {
  const { fullInterval, forceFull, source } = options;
  const remotes = options.remotes.map((remote): RemoteDecision => {
    const { remoteId, last } = remote;
    if (forceFull) return { remoteId, kind: 'key', reason: 'FORCED' };
    if (last === undefined) return { remoteId, kind: 'key', reason: 'NO_BASE' };
    if (last.sizeBytes !== source.sizeBytes)
      return { remoteId, kind: 'key', reason: 'SIZE_CHANGED' };
    if (fullInterval > 0 && last.chainBackupCount >= fullInterval) {
      return { remoteId, kind: 'key', reason: 'KEY_INTERVAL' };
    }
    if (source.deltaBase !== undefined && source.deltaBase === last.sourceReference) {
      return { remoteId, kind: 'delta', method: 'tracker' };
    }
    const reason =
      source.deltaBase === undefined
        ? (source.noDeltaReason ?? 'NO_CHANGE_TRACKER')
        : 'TRACKER_BASE_MISMATCH';
    return { remoteId, kind: 'delta', method: 'hash-compare', reason };
  });
  const everyTracked = remotes.every((r) => r.kind === 'delta' && r.method === 'tracker');
  return { remotes, read: everyTracked && remotes.length > 0 ? 'delta' : 'full' };
}
