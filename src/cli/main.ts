/** CLI entry point (bin/vmdelta.js and `npm run vmdelta`): runs the program, sets the exit code. */
import { runCli } from './run-cli.ts';

// A closed pipe (`vmdelta … | head`) must not kill the process before it cleans up after itself.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

process.exitCode = await runCli(process.argv.slice(2));
