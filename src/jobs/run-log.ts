/**
 * The run log: one structured record per run, machine and disk, stored in the job store and
 * rendered as text or JSON at the edge. It answers "what happened and why": key or delta per
 * disk and remote and why, the transport (NBD or stream, connections, TLS, change tracker), bytes
 * and blocks, durations per phase, every fallback with its reason, warnings, the final status.
 */
import type { DeltaMethod } from './backup-decision.ts';

export type RunStatus = 'running' | 'success' | 'partial' | 'failure' | 'interrupted' | 'skipped';

export interface LoggedError {
  readonly code: string;
  readonly message: string;
}

export type TransportLog =
  | { readonly type: 'nbd'; readonly connections: number; readonly tls: boolean }
  | { readonly type: 'stream'; readonly format: 'vhd' | 'raw' | 'qcow2' | 'file' };

export interface FallbackLog {
  /** What was wanted, e.g. "nbd" or "delta". */
  readonly from: string;
  /** What was used instead, e.g. "stream" or "key". */
  readonly to: string;
  readonly reason: string;
}

export interface RemoteWriteLog {
  readonly remoteId: string;
  readonly kind: 'key' | 'delta';
  /** A KeyReason for a key; for a hash-compare delta, why no tracker was usable. */
  readonly reason?: string;
  readonly method?: DeltaMethod;
  readonly status: 'success' | 'failure';
  readonly bytesWritten: number;
  readonly blocksWritten: number;
  readonly restorePointId?: string;
  readonly error?: LoggedError;
}

export interface DiskLog {
  readonly diskId: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly read: 'full' | 'delta';
  readonly transport: TransportLog;
  /** e.g. "qemu-dirty-bitmap", "xapi-cbt", "vhd-delta", "none". */
  readonly changeTracker: string;
  readonly bytesRead: number;
  readonly blocksRead: number;
  readonly blocksChanged: number;
  readonly durationMs: number;
  readonly remotes: readonly RemoteWriteLog[];
  readonly fallbacks: readonly FallbackLog[];
}

export interface PhaseDurations {
  snapshotMs?: number;
  transferMs?: number;
  commitMs?: number;
  mergeMs?: number;
  gcMs?: number;
}

export interface MachineLog {
  readonly machineId: string;
  readonly name: string;
  status: RunStatus;
  readonly startedMs: number;
  endedMs?: number;
  readonly phases: PhaseDurations;
  readonly disks: DiskLog[];
  readonly warnings: string[];
  /** Restore points merged or removed by retention on each remote. */
  readonly retention: { remoteId: string; merged: number; removed: number }[];
  error?: LoggedError;
}

export interface RunLog {
  readonly runId: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly scheduleId?: string;
  readonly trigger: 'schedule' | 'manual';
  readonly forceFull: boolean;
  readonly startedMs: number;
  endedMs?: number;
  status: RunStatus;
  readonly machines: MachineLog[];
  readonly warnings: string[];
  error?: LoggedError;
}

/** The status of a run from its machines: all ok → success; none ok → failure; else partial. */
export function summarizeStatus(machines: readonly { status: RunStatus }[]): RunStatus {
  if (machines.length === 0) return 'success';
  const ok = machines.filter((m) => m.status === 'success').length;
  if (ok === machines.length) return 'success';
  if (ok === 0 && machines.every((m) => m.status !== 'partial')) return 'failure';
  return 'partial';
}
