/** Typed events a running job emits, for live progress (CLI bars, server-sent events). */

export type JobEvent =
  | {
      readonly type: 'run-started';
      readonly runId: string;
      readonly jobId: string;
      readonly machineIds: readonly string[];
    }
  | {
      readonly type: 'machine-phase';
      readonly runId: string;
      readonly machineId: string;
      readonly phase: MachinePhase;
    }
  | {
      readonly type: 'disk-progress';
      readonly runId: string;
      readonly machineId: string;
      readonly diskId: string;
      readonly bytesRead: number;
      readonly blocksRead: number;
      readonly blocksTotal: number;
      readonly elapsedMs: number;
    }
  | {
      readonly type: 'machine-finished';
      readonly runId: string;
      readonly machineId: string;
      readonly status: string;
    }
  | {
      readonly type: 'warning';
      readonly runId: string;
      readonly machineId?: string;
      readonly message: string;
    }
  | { readonly type: 'run-finished'; readonly runId: string; readonly status: string };

export type MachinePhase = 'lease' | 'snapshot' | 'transfer' | 'commit' | 'merge' | 'gc' | 'done';
