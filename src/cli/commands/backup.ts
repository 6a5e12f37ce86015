/** `vmdelta backup list|restore|copy|verify|prune` and `vmdelta logs`: stored backups and run logs. */
import type { Command } from 'commander';
import {
  copyBackups,
  exportVhdChain,
  listBackups,
  pruneBackups,
  restoreToFiles,
  restoreToSource,
  verifyBackups,
  type FileFormat,
} from '../../app/index.ts';
import { formatBytes, formatRate } from '../../core/index.ts';
import { formatRunLogText, formatTimestamp } from '../render/run-log-text.ts';
import { withCommandProgress } from '../render/progress.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import { EXIT_FINDINGS } from '../exit-codes.ts';
import { printJson, type CliIo } from '../io.ts';
import { registerBackupRestoreVm } from './backup-restore-vm.ts';

export function registerBackup(program: Command, io: CliIo): void {
  const backup = program
    .command('backup')
    .description('stored backups: list, restore, copy (seed), verify, prune');

  withAppOptions(
    backup
      .command('list')
      .description('restore points of a remote, per machine, oldest first')
      .requiredOption('--remote <id>', 'remote')
      .option('--vm <id>', 'only this machine'),
  ).action(async (options: AppCliOptions & { remote: string; vm?: string }) => {
    await withApp(options, async (app) => {
      const points = await listBackups(app, options.remote, options.vm);
      if (options.json === true) {
        printJson(io, points);
        return;
      }
      for (const p of points) {
        const disks = p.disks
          .map(
            (d) =>
              `${d.diskId}:${d.kind} (chain ${d.chainId.slice(0, 8)} #${d.chainLength}, ${d.changedBlocks} blocks, ${formatBytes(d.storedBytes)})`,
          )
          .join('  ');
        io.stdout.write(`${p.vmId}\t${p.pointId}\t${formatTimestamp(p.createdMs)}\t${disks}\n`);
      }
    });
  });

  withAppOptions(
    backup
      .command('restore')
      .description('restore the disks of a restore point into new files (raw, qcow2 or VHD)')
      .requiredOption('--remote <id>', 'remote')
      .requiredOption('--vm <id>', 'machine')
      .requiredOption('--point <id>', 'restore point (see backup list)')
      .requiredOption('--to <dir>', 'folder for the restored files')
      .option('--disk <id...>', 'only these disks')
      .option('--format <format>', 'raw, qcow2 or vhd', 'raw')
      .addHelpText(
        'after',
        '\nExample:\n  vmdelta backup restore --remote nas --vm vm1 --point 20261126T020000Z-1a2b3c4d --to /srv/restore --format qcow2',
      ),
  ).action(
    async (
      options: AppCliOptions & {
        remote: string;
        vm: string;
        point: string;
        to: string;
        disk?: string[];
        format: string;
      },
    ) => {
      await withApp(options, async (app) => {
        const startMs = Date.now();
        const files = await withCommandProgress(io, options.json, (progress) =>
          restoreToFiles(app, {
            remoteId: options.remote,
            vmId: options.vm,
            pointId: options.point,
            dir: options.to,
            format: options.format as FileFormat,
            ...(options.disk === undefined ? {} : { diskIds: options.disk }),
            ...progress,
          }),
        );
        if (options.json === true) printJson(io, files);
        else {
          const total = files.reduce((sum, f) => sum + f.sizeBytes, 0);
          for (const f of files)
            io.stdout.write(`${f.diskId}\t${f.path}\t${formatBytes(f.sizeBytes)}\n`);
          io.stdout.write(
            `restored ${files.length} disk(s) at ${formatRate(total, Date.now() - startMs)}\n`,
          );
        }
      });
    },
  );

  withAppOptions(
    backup
      .command('restore-into')
      .description(
        "write a restore point back into a source's machine (a stopped machine's disks, same disk ids)",
      )
      .requiredOption('--remote <id>', 'remote')
      .requiredOption('--vm <id>', 'machine the restore point belongs to')
      .requiredOption('--point <id>', 'restore point')
      .requiredOption('--source <id>', 'hypervisor source')
      .option('--machine <id>', 'target machine (default: the same machine)')
      .option('--disk <id...>', 'only these disks'),
  ).action(
    async (
      options: AppCliOptions & {
        remote: string;
        vm: string;
        point: string;
        source: string;
        machine?: string;
        disk?: string[];
      },
    ) => {
      await withApp(options, async (app) => {
        const points = await listBackups(app, options.remote, options.vm);
        const point = points.find((p) => p.pointId === options.point);
        if (point === undefined)
          throw new Error(
            `no restore point ${options.point} of ${options.vm} on ${options.remote}`,
          );
        const diskIds = options.disk ?? point.disks.map((d) => d.diskId);
        const restored = await withCommandProgress(io, options.json, (progress) =>
          restoreToSource(app, {
            remoteId: options.remote,
            vmId: options.vm,
            pointId: options.point,
            sourceId: options.source,
            targets: diskIds.map((diskId) => ({
              diskId,
              target: {
                kind: 'machine-disk' as const,
                machineId: options.machine ?? options.vm,
                diskId,
              },
            })),
            ...progress,
          }),
        );
        if (options.json === true) printJson(io, restored);
        else
          for (const r of restored)
            io.stdout.write(
              `${r.location}\t${formatBytes(r.sizeBytes)}\t${r.writtenBlocks} blocks written\n`,
            );
      });
    },
  );

  registerBackupRestoreVm(backup, io);

  withAppOptions(
    backup
      .command('export-vhd-chain')
      .description(
        'export a disk of a restore point as a key VHD plus one differencing VHD per later point of its chain',
      )
      .requiredOption('--remote <id>', 'remote')
      .requiredOption('--vm <id>', 'machine')
      .requiredOption('--point <id>', 'restore point: the last file of the chain')
      .requiredOption('--disk <id>', 'disk')
      .requiredOption('--to <dir>', 'folder for the VHD files')
      .addHelpText(
        'after',
        '\nThe files open as a chain in tools that follow VHD parent locators (the newest file is the top).',
      ),
  ).action(
    async (
      options: AppCliOptions & {
        remote: string;
        vm: string;
        point: string;
        disk: string;
        to: string;
      },
    ) => {
      await withApp(options, async (app) => {
        const files = await withCommandProgress(io, options.json, (progress) =>
          exportVhdChain(app, {
            remoteId: options.remote,
            vmId: options.vm,
            pointId: options.point,
            diskId: options.disk,
            dir: options.to,
            ...progress,
          }),
        );
        if (options.json === true) printJson(io, files);
        else for (const f of files) io.stdout.write(`${f.kind}\t${f.path}\n`);
      });
    },
  );

  withAppOptions(
    backup
      .command('copy')
      .description(
        'copy backups to another remote (initial seed, mirror); idempotent and resumable',
      )
      .requiredOption('--from <id>', 'source remote')
      .requiredOption('--to <id>', 'target remote')
      .option('--vm <id>', 'only this machine')
      .option('--mirror', 'only points newer than the target already has'),
  ).action(
    async (
      options: AppCliOptions & { from: string; to: string; vm?: string; mirror?: boolean },
    ) => {
      await withApp(options, async (app) => {
        const result = await withCommandProgress(io, options.json, (progress) =>
          copyBackups(app, {
            from: options.from,
            to: options.to,
            ...(options.vm === undefined ? {} : { vmId: options.vm }),
            ...(options.mirror === true ? { mode: 'mirror' as const } : {}),
            ...progress,
          }),
        );
        if (options.json === true) printJson(io, result);
        else
          io.stdout.write(
            `copied ${result.copiedPoints} restore point(s): ${result.copiedObjects} objects (${formatBytes(result.copiedBytes)}), ${result.skippedObjects} already there\n`,
          );
      });
    },
  );

  withAppOptions(
    backup
      .command('verify')
      .description(
        'check a remote: structure always, block data by re-hashing a sample (--sample 1 = all)',
      )
      .requiredOption('--remote <id>', 'remote')
      .option('--vm <id>', 'only this machine')
      .option('--sample <fraction>', 'share of blocks re-read and re-hashed, 0..1', '0'),
  ).action(async (options: AppCliOptions & { remote: string; vm?: string; sample: string }) => {
    await withApp(options, async (app) => {
      const result = await withCommandProgress(io, options.json, (progress) =>
        verifyBackups(app, {
          remoteId: options.remote,
          dataSample: Number(options.sample),
          ...(options.vm === undefined ? {} : { vmId: options.vm }),
          ...progress,
        }),
      );
      if (options.json === true) printJson(io, result);
      else {
        for (const f of result.findings) io.stdout.write(`${f.code}\t${f.key}\t${f.message}\n`);
        io.stdout.write(
          `${result.checkedPoints} restore point(s), ${result.checkedIndexes} index(es) checked: ${result.findings.length} finding(s)\n`,
        );
      }
      if (result.findings.length > 0) process.exitCode = EXIT_FINDINGS;
    });
  });

  withAppOptions(
    backup
      .command('prune')
      .description('apply retention now: removed points are merged into their successors, then GC')
      .requiredOption('--remote <id>', 'remote')
      .requiredOption('--vm <id>', 'machine')
      .requiredOption('--keep-last <n>', 'restore points to keep')
      .option('--dry-run', 'only print the decisions'),
  ).action(
    async (
      options: AppCliOptions & { remote: string; vm: string; keepLast: string; dryRun?: boolean },
    ) => {
      await withApp(options, async (app) => {
        const run = await withCommandProgress(io, options.json, (progress) =>
          pruneBackups(app, {
            remoteId: options.remote,
            vmId: options.vm,
            policy: { keepLast: Number(options.keepLast) },
            dryRun: options.dryRun === true,
            ...progress,
          }),
        );
        if (options.json === true) printJson(io, run);
        else
          for (const d of run.decisions)
            io.stdout.write(
              `${d.pointId}\t${d.keep ? 'keep' : 'remove'}\t${d.reasons.join(', ')}\n`,
            );
      });
    },
  );

  withAppOptions(
    program
      .command('logs [runId]')
      .description('run logs: the latest runs, or one run in full')
      .option('--job <id>', 'only this job')
      .option('--limit <n>', 'runs listed', '20'),
  ).action(
    async (runId: string | undefined, options: AppCliOptions & { job?: string; limit: string }) => {
      await withApp(options, (app) => {
        if (runId !== undefined) {
          const log = app.store.getRun(runId);
          if (log === undefined) throw new Error(`no run ${runId}`);
          if (options.json === true) printJson(io, log);
          else io.stdout.write(formatRunLogText(log));
          return Promise.resolve();
        }
        const runs = app.store.listRuns({
          ...(options.job === undefined ? {} : { jobId: options.job }),
          limit: Number(options.limit),
        });
        if (options.json === true) printJson(io, runs);
        else
          for (const r of runs)
            io.stdout.write(
              `${r.runId}\t${r.jobId}\t${r.status}\t${formatTimestamp(r.startedMs)}\n`,
            );
        return Promise.resolve();
      });
    },
  );
}
