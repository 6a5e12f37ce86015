/** Every CLI command, registered in display order. One file per command (group). */
import type { Command } from 'commander';
import type { CliIo } from '../io.ts';
import { registerDemo } from './demo.ts';
import { registerNbd } from './nbd.ts';
import { registerVhd } from './vhd.ts';
import { registerRemote } from './remote.ts';
import { registerSource } from './source.ts';
import { registerJob } from './job.ts';
import { registerBackup } from './backup.ts';
import { registerServe } from './serve.ts';
import { registerUser } from './user.ts';

type Register = (program: Command, io: CliIo) => void;

const commands: readonly Register[] = [
  registerRemote,
  registerSource,
  registerJob,
  registerBackup,
  registerServe,
  registerUser,
  registerDemo,
  registerNbd,
  registerVhd,
];

export function registerCommands(program: Command, io: CliIo): void {
  for (const register of commands) register(program, io);
}
