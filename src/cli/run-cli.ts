/** Runs the commander program and turns errors into messages and exit codes. */
import { CommanderError } from 'commander';
import { describeError, isVmdeltaError } from '../core/index.ts';
import { buildProgram } from './program.ts';
import { processIo, type CliIo } from './io.ts';
import { EXIT_FAILURE, EXIT_USAGE } from './exit-codes.ts';

export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const code = isVmdeltaError(error) ? ` [${error.code}]` : '';
    io.stderr.write(`vmdelta: error${code}: ${describeError(error).replace(/^[A-Z_]+: /, '')}\n`);
    if (io.env['VMDELTA_DEBUG'] === '1' && error instanceof Error)
      io.stderr.write(`${error.stack ?? ''}\n`);
    return EXIT_FAILURE;
  }
}
