/** Cron evaluation (croner) in a schedule's time zone, with a typed error for bad expressions. */
import { Cron } from 'croner';
import { JobError } from '../../jobs/index.ts';

/** The first time strictly after `afterMs` matching `cron` in `timezone`, or undefined if none. */
export function nextRunMs(cron: string, timezone: string, afterMs: number): number | undefined {
  let pattern: Cron;
  try {
    pattern = new Cron(cron, { timezone, paused: true });
  } catch (error) {
    throw new JobError(
      'JOB_INVALID',
      `invalid cron expression "${cron}" (${timezone}): ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const next = pattern.nextRun(new Date(afterMs));
  return next === null ? undefined : next.getTime();
}
