/** What backing up one machine needs (the run's settings, the opened source and remotes). */
import type { Clock, EventSink } from '../core/index.ts';
import type { RateLimiter } from '../disk/index.ts';
import type { Hypervisor, MachineInfo } from '../hypervisor/index.ts';
import type { RetentionPolicy } from '../repository/index.ts';
import type { JobEvent } from './job-events.ts';
import type { RemoteTarget } from './remote-state.ts';

export interface MachineBackupOptions {
  readonly runId: string;
  readonly hypervisor: Hypervisor;
  readonly machine: MachineInfo;
  readonly remotes: readonly RemoteTarget[];
  readonly jobId: string;
  readonly scheduleId: string | undefined;
  readonly forceFull: boolean;
  readonly fullInterval: number;
  readonly nbdConcurrency: number;
  /** Disks read at once (0 = all). */
  readonly diskPerVmConcurrency: number;
  readonly preferNbd: boolean;
  readonly retention: RetentionPolicy | undefined;
  readonly limiter: RateLimiter | undefined;
  readonly holderId: string;
  readonly clock: Clock;
  readonly events: EventSink<JobEvent>;
  readonly signal?: AbortSignal;
  readonly gcSafetyWindowMs?: number;
}
