/**
 * Run notifications by webhook: a JSON POST of the run summary, sent on failure (default),
 * always or never (the job's `reportWhen`). Delivery has a timeout and never fails the run; the
 * outcome is returned for the run log. The URL may carry a secret token: it is never logged.
 */
import type { RunLog } from '../../jobs/index.ts';

export type ReportWhen = 'always' | 'failure' | 'never';

export function shouldNotify(reportWhen: ReportWhen, status: RunLog['status']): boolean {
  if (reportWhen === 'never') return false;
  if (reportWhen === 'always') return true;
  return status !== 'success' && status !== 'skipped';
}

export interface RunSummaryPayload {
  readonly event: 'vmdelta.run.finished';
  readonly runId: string;
  readonly jobId: string;
  readonly jobName: string;
  readonly status: RunLog['status'];
  readonly startedAt: string;
  readonly endedAt: string | undefined;
  readonly error: RunLog['error'];
  readonly machines: readonly {
    id: string;
    name: string;
    status: string;
    error?: { code: string; message: string };
  }[];
  readonly warnings: readonly string[];
}

export function summarizeRun(log: RunLog): RunSummaryPayload {
  return {
    event: 'vmdelta.run.finished',
    runId: log.runId,
    jobId: log.jobId,
    jobName: log.jobName,
    status: log.status,
    startedAt: new Date(log.startedMs).toISOString(),
    endedAt: log.endedMs === undefined ? undefined : new Date(log.endedMs).toISOString(),
    error: log.error,
    machines: log.machines.map((m) => ({
      id: m.machineId,
      name: m.name,
      status: m.status,
      ...(m.error === undefined ? {} : { error: m.error }),
    })),
    warnings: [...log.warnings, ...log.machines.flatMap((m) => m.warnings)],
  };
}

/** Host of a URL for messages (never the path or query, which may hold a token). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}/…`;
  } catch {
    return '(invalid URL)';
  }
}

export async function sendWebhook(
  url: string,
  payload: RunSummaryPayload,
  options: { timeoutMs?: number } = {},
): Promise<{ ok: true; status: number } | { ok: false; reason: string }> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'vmdelta' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    await response.body?.cancel();
    return response.ok
      ? { ok: true, status: response.status }
      : { ok: false, reason: `${redactUrl(url)} answered HTTP ${response.status}` };
  } catch (error) {
    return { ok: false, reason: `${redactUrl(url)}: ${(error as Error).message}` };
  }
}
