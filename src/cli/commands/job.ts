/** `vmdelta job create|list|show|run`: incremental backup jobs (Xen Orchestra's setting names). */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { formatTimestamp, formatRunLogText } from '../render/run-log-text.ts';
import { progressRenderer } from '../render/progress.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import { EXIT_FAILURE } from '../exit-codes.ts';
import { printJson, type CliIo } from '../io.ts';

interface CreateOptions extends AppCliOptions {
  file?: string;
  name?: string;
  source?: string;
  machine?: string[];
  remote?: string[];
  cron?: string;
  timezone?: string;
  retention?: string;
  fullInterval?: string;
  nbdConcurrency?: string;
  noNbd?: boolean;
  concurrency?: string;
  maxExportRate?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerJob(program: Command, io: CliIo): void {
  const job = program.command('job').description('manage and run incremental backup jobs');

  withAppOptions(
    job
      .command('create <id>')
      .description('create or replace a job, from --file (JSON) or from options')
      .option('--file <file>', 'job definition as JSON (see docs/design.md §7.1)')
      .option('--name <name>', 'display name')
      .option('--source <id>', 'hypervisor source')
      .option('--machine <id>', 'machine to back up (repeatable)', collect)
      .option('--remote <id>', 'remote to write to (repeatable)', collect)
      .option('--cron <expr>', 'schedule (cron, 5 fields)', '0 2 * * *')
      .option('--timezone <tz>', 'time zone of the schedule', 'UTC')
      .option('--retention <n>', 'restore points kept per remote', '7')
      .option(
        '--full-interval <n>',
        'key backup interval: one key then n-1 deltas (0 = never)',
        '20',
      )
      .option('--nbd-concurrency <n>', 'NBD connections per disk', '2')
      .option('--no-nbd', 'do not prefer NBD')
      .option('--concurrency <n>', 'machines in parallel', '2')
      .option('--max-export-rate <bytesPerSecond>', 'read rate limit (0 = none)', '0')
      .addHelpText(
        'after',
        '\nExample:\n  vmdelta job create nightly --source lab --machine vm1 --remote nas --retention 14 --full-interval 20',
      ),
  ).action(async (id: string, options: CreateOptions) => {
    await withApp(options, async (app) => {
      const definition: unknown =
        options.file !== undefined
          ? { ...(JSON.parse(readFileSync(options.file, 'utf8')) as object), id }
          : {
              id,
              name: options.name ?? id,
              source: options.source,
              machines: { ids: options.machine ?? [] },
              remotes: options.remote ?? [],
              schedules: [
                {
                  id: 'default',
                  cron: options.cron,
                  timezone: options.timezone,
                  exportRetention: Number(options.retention),
                },
              ],
              settings: {
                fullInterval: Number(options.fullInterval),
                nbdConcurrency: Number(options.nbdConcurrency),
                preferNbd: options.noNbd !== true,
                concurrency: Number(options.concurrency),
                maxExportRate: Number(options.maxExportRate),
              },
            };
      const saved = app.saveJob(definition);
      if (options.json === true) printJson(io, saved);
      else io.stdout.write(`job ${saved.id} saved\n`);
    });
  });

  withAppOptions(
    job
      .command('edit <id>')
      .description('change settings of an existing job (only the options given change)')
      .option('--name <name>', 'display name')
      .option('--remote <id>', 'replace the remotes (repeatable)', collect)
      .option('--machine <id>', 'replace the machines (repeatable)', collect)
      .option('--retention <n>', 'restore points kept per remote (every schedule)')
      .option('--full-interval <n>', 'key backup interval (0 = never)')
      .option('--nbd-concurrency <n>', 'NBD connections per disk')
      .option('--concurrency <n>', 'machines in parallel')
      .option('--max-export-rate <bytesPerSecond>', 'read rate limit (0 = none)')
      .addHelpText(
        'after',
        '\nExample:\n  vmdelta job edit nightly --remote nas --remote s3 --full-interval 10',
      ),
  ).action(async (id: string, options: CreateOptions) => {
    await withApp(options, async (app) => {
      const current = app.job(id);
      const number = (value: string | undefined, fallback: number): number =>
        value === undefined ? fallback : Number(value);
      const saved = app.saveJob({
        ...current,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.remote === undefined ? {} : { remotes: options.remote }),
        ...(options.machine === undefined
          ? {}
          : { machines: { ...current.machines, ids: options.machine } }),
        schedules: current.schedules.map((s) => ({
          ...s,
          exportRetention: number(options.retention, s.exportRetention),
        })),
        settings: {
          ...current.settings,
          fullInterval: number(options.fullInterval, current.settings.fullInterval),
          nbdConcurrency: number(options.nbdConcurrency, current.settings.nbdConcurrency),
          concurrency: number(options.concurrency, current.settings.concurrency),
          maxExportRate: number(options.maxExportRate, current.settings.maxExportRate),
        },
      });
      if (options.json === true) printJson(io, saved);
      else io.stdout.write(`job ${saved.id} updated\n`);
      return Promise.resolve();
    });
  });

  withAppOptions(job.command('list').description('list jobs with their last run')).action(
    async (options: AppCliOptions) => {
      await withApp(options, async (app) => {
        const rows = app.jobs().map((j) => {
          const last = app.store.listRuns({ jobId: j.id, limit: 1 })[0];
          return {
            id: j.id,
            name: j.name,
            source: j.source,
            remotes: j.remotes,
            lastRun: last ?? null,
          };
        });
        if (options.json === true) {
          printJson(io, rows);
          return;
        }
        for (const r of rows) {
          const last =
            r.lastRun === null
              ? 'never run'
              : `${r.lastRun.status} at ${formatTimestamp(r.lastRun.startedMs)}`;
          io.stdout.write(`${r.id}\t${r.name}\t${r.source} → ${r.remotes.join(', ')}\t${last}\n`);
        }
      });
    },
  );

  withAppOptions(job.command('show <id>').description('print a job definition')).action(
    async (id: string, options: AppCliOptions) => {
      await withApp(options, (app) => {
        printJson(io, app.job(id));
        return Promise.resolve();
      });
    },
  );

  withAppOptions(
    job
      .command('run <id>')
      .description('run a job now and print its log')
      .option('--schedule <id>', 'run as this schedule (its retention applies; default: the first)')
      .option('--force-full', 'make a key backup of every disk')
      .addHelpText(
        'after',
        '\nExamples:\n  vmdelta job run nightly\n  vmdelta job run nightly --force-full --json',
      ),
  ).action(
    async (id: string, options: AppCliOptions & { schedule?: string; forceFull?: boolean }) => {
      await withApp(options, async (app) => {
        const log = await app.runJob(id, {
          ...(options.schedule === undefined ? {} : { scheduleId: options.schedule }),
          ...(options.forceFull === true ? { forceFull: true } : {}),
          events: options.json === true ? { emit: () => undefined } : progressRenderer(io.stderr),
        });
        if (options.json === true) printJson(io, log);
        else io.stdout.write(formatRunLogText(log));
        if (log.status !== 'success') process.exitCode = EXIT_FAILURE;
      });
    },
  );
}
