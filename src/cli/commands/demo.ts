/** `vmdelta demo`: the README's first Quick start command, on embedded defaults. */
import type { Command } from 'commander';
import type { CliIo } from '../io.ts';
import { runDemo } from '../demo/run-demo.ts';

export function registerDemo(program: Command, io: CliIo): void {
  program
    .command('demo')
    .description(
      'run the end-to-end demonstration on generated disks (embedded defaults, cleans up)',
    )
    .option('--keep', 'keep the demo folder for inspection')
    .addHelpText('after', '\nExample:\n  vmdelta demo')
    .action(async (options: { keep?: boolean }) => {
      const result = await runDemo(io, { keep: options.keep === true });
      if (result.restores.some((r) => r.expectedSha256 !== r.restoredSha256)) process.exitCode = 1;
    });
}
