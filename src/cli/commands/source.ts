/** `vmdelta source add-qemu|list|machines`: hypervisor sources the jobs back up from. */
import type { Command } from 'commander';
import { formatBytes } from '../../core/index.ts';
import { redactSource } from '../../app/index.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import { printJson, type CliIo } from '../io.ts';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerSource(program: Command, io: CliIo): void {
  const source = program
    .command('source')
    .description('hypervisor sources: QEMU/KVM machines (XAPI pools come next)');

  withAppOptions(
    source
      .command('add-qemu <id>')
      .description(
        'add (or replace) a QEMU source: running machines by QMP socket, stopped ones by image',
      )
      .option(
        '--machine <id=qmpSocket[,nbd=socket]>',
        "a running machine, its QMP socket and, if it already runs an NBD server, that server's unix socket (repeatable)",
        collect,
      )
      .option(
        '--image <machine:disk=path.qcow2>',
        'a disk image of a stopped machine (repeatable)',
        collect,
      )
      .addHelpText(
        'after',
        '\nExamples:\n  vmdelta source add-qemu lab --machine web1=/run/qemu/web1.qmp\n  vmdelta source add-qemu offline --image vm2:disk0=/var/lib/images/vm2.qcow2',
      ),
  ).action(
    async (id: string, options: AppCliOptions & { machine?: string[]; image?: string[] }) => {
      await withApp(options, (app) => {
        const machines = new Map<
          string,
          {
            id: string;
            qmpSocket?: string;
            nbdServer?: { transport: 'unix'; socketPath: string };
            images?: { id: string; path: string; format: 'qcow2' | 'raw' }[];
          }
        >();
        for (const spec of options.machine ?? []) {
          const match = /^([^=]+)=([^,]+)(?:,nbd=(.+))?$/.exec(spec);
          if (match?.[1] === undefined || match[2] === undefined)
            throw new Error(`--machine ${spec}: expected id=qmpSocket[,nbd=socket]`);
          machines.set(match[1], {
            id: match[1],
            qmpSocket: match[2],
            ...(match[3] === undefined
              ? {}
              : { nbdServer: { transport: 'unix' as const, socketPath: match[3] } }),
          });
        }
        for (const spec of options.image ?? []) {
          const match = /^([^:=]+):([^=]+)=(.+)$/.exec(spec);
          if (match?.[1] === undefined || match[2] === undefined || match[3] === undefined)
            throw new Error(`--image ${spec}: expected machine:disk=path`);
          const entry = machines.get(match[1]) ?? { id: match[1], images: [] };
          entry.images = [
            ...(entry.images ?? []),
            { id: match[2], path: match[3], format: match[3].endsWith('.qcow2') ? 'qcow2' : 'raw' },
          ];
          machines.set(match[1], entry);
        }
        const saved = app.saveSource({ type: 'qemu', id, machines: [...machines.values()] });
        if (options.json === true) printJson(io, saved);
        else
          io.stdout.write(
            `source ${id} saved (${saved.type === 'qemu' ? saved.machines.length : 0} machine(s))\n`,
          );
        return Promise.resolve();
      });
    },
  );

  withAppOptions(source.command('list').description('list sources')).action(
    async (options: AppCliOptions) => {
      await withApp(options, (app) => {
        const sources = app.sources().map(redactSource);
        if (options.json === true) printJson(io, sources);
        else
          for (const s of sources)
            io.stdout.write(
              `${s.id}\t${s.type}\t${s.type === 'qemu' ? s.machines.map((m) => m.id).join(', ') : s.url}\n`,
            );
        return Promise.resolve();
      });
    },
  );

  withAppOptions(
    source.command('machines <id>').description('list the machines and disks a source sees now'),
  ).action(async (id: string, options: AppCliOptions) => {
    await withApp(options, async (app) => {
      const machines = await app.source(id).listMachines();
      if (options.json === true) {
        printJson(io, machines);
        return;
      }
      for (const m of machines) {
        io.stdout.write(`${m.id}\t${m.label}\t${m.powerState}\n`);
        for (const d of m.disks)
          io.stdout.write(
            `  ${d.id}\t${formatBytes(d.sizeBytes)}\t${d.format ?? ''}\ttracker: ${d.changeTracker}\t${d.identity}\n`,
          );
      }
    });
  });
}
