/** What the API route modules share: the App, the job runner, the event hub, auth, schedules. */
import type { App } from '../../app/index.ts';
import type { RunLog } from '../../jobs/index.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { EventHub } from '../http/event-hub.ts';
import type { JobRunner } from '../job-runner.ts';

export interface ApiContext {
  readonly app: App;
  readonly runner: JobRunner;
  readonly hub: EventHub;
  readonly auth: Authenticator;
  /** Next due time of each schedule. */
  readonly upcoming: () => { jobId: string; scheduleId: string; nextMs: number | undefined }[];
  /** Renders a run log as text (injected by the CLI, which owns the text renderer). */
  readonly formatRunLog: (log: RunLog) => string;
  /** True when served over HTTPS (cookies get `Secure`). */
  readonly secure: boolean;
}
