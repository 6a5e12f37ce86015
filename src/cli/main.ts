/** CLI entry point (bin/vmdelta.js and `npm run vmdelta`): runs the program, sets the exit code. */
import { runCli } from './run-cli.ts';

process.exitCode = await runCli(process.argv.slice(2));
