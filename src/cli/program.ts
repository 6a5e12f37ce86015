/** Builds the commander program: global options, then one file per command under commands/. */
import { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import type { CliIo } from './io.ts';
import { registerCommands } from './commands/index.ts';

export function buildProgram(io: CliIo): Command {
  const program = new Command('vmdelta')
    .description(
      'Incremental-forever backups of virtual-machine disks: one key backup, then deltas forever, the oldest delta merged into the key as retention requires.',
    )
    .version(packageJson.version, '-V, --version', 'print the vmdelta version')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .exitOverride();
  registerCommands(program, io);
  return program;
}
