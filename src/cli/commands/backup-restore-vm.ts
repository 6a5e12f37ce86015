/** `vmdelta backup restore-vm`: a whole machine of a restore point, recreated as a new machine. */
import type { Command } from 'commander';
import { restoreMachineToSource } from '../../app/index.ts';
import { formatBytes } from '../../core/index.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import { printJson, type CliIo } from '../io.ts';

export function registerBackupRestoreVm(backup: Command, io: CliIo): void {
  withAppOptions(
    backup
      .command('restore-vm')
      .description(
        'restore a whole machine of a restore point into a source as a NEW machine: disks, and memory, vCPUs, boot and network interfaces as saved',
      )
      .requiredOption('--remote <id>', 'remote')
      .requiredOption('--vm <id>', 'machine the restore point belongs to')
      .requiredOption('--point <id>', 'restore point (see backup list)')
      .requiredOption('--source <id>', 'hypervisor source to create the machine on')
      .requiredOption('--new-machine <label>', 'name of the new machine')
      .requiredOption('--storage <id>', 'storage for the new disks (XAPI: SR uuid)')
      .option('--disk <id...>', 'only these disks')
      .option(
        '--default-network <id>',
        'network (uuid or name) for interfaces whose saved network is missing (default: skip them)',
      )
      .addHelpText(
        'after',
        [
          '',
          'A saved interface goes to the network with the saved uuid, else the same name, else',
          '--default-network; otherwise it is skipped with a warning. Saved MAC addresses are kept',
          'unless another interface of the pool uses them (the hypervisor then generates one).',
          '',
          'Examples:',
          '  vmdelta backup restore-vm --remote nas --vm 0b5e…-uuid --point 20261126T020000Z-1a2b3c4d \\',
          '    --source pool1 --new-machine "web-01 (restored)" --storage 8f3c…-sr-uuid',
          '  vmdelta backup restore-vm … --default-network "Pool-wide network associated with eth0" --json',
        ].join('\n'),
      ),
  ).action(
    async (
      options: AppCliOptions & {
        remote: string;
        vm: string;
        point: string;
        source: string;
        newMachine: string;
        storage: string;
        disk?: string[];
        defaultNetwork?: string;
      },
    ) => {
      await withApp(options, async (app) => {
        const restored = await restoreMachineToSource(app, {
          remoteId: options.remote,
          vmId: options.vm,
          pointId: options.point,
          sourceId: options.source,
          label: options.newMachine,
          storageId: options.storage,
          ...(options.disk === undefined ? {} : { diskIds: options.disk }),
          ...(options.defaultNetwork === undefined
            ? {}
            : { defaultNetwork: options.defaultNetwork }),
        });
        if (options.json === true) {
          printJson(io, restored);
          return;
        }
        io.stdout.write(`machine ${restored.machineId ?? '(disks only)'}\n`);
        for (const d of restored.disks)
          io.stdout.write(
            `  disk ${d.location}\t${formatBytes(d.sizeBytes)}\t${d.writtenBlocks} blocks written\n`,
          );
        for (const n of restored.nics ?? [])
          io.stdout.write(`  interface ${n.device}\t${n.macAddress}\tnetwork ${n.networkUuid}\n`);
        for (const w of restored.warnings ?? [])
          io.stdout.write(`  warning ${w.code}: ${w.message}\n`);
      });
    },
  );
}
