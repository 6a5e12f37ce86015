/** `vmdelta user set-password|token`: users and API tokens of `vmdelta serve`. */
import type { Command } from 'commander';
import { createApiToken, hashPassword } from '../../server/index.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import type { CliIo } from '../io.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export function registerUser(program: Command, io: CliIo): void {
  const user = program.command('user').description('users and API tokens of `vmdelta serve`');

  withAppOptions(
    user
      .command('set-password <name>')
      .description(
        'create a user or change its password, read from VMDELTA_PASSWORD or else from stdin',
      )
      .addHelpText(
        'after',
        '\nExamples:\n  echo "s3cret-pass" | vmdelta user set-password admin\n  VMDELTA_PASSWORD=... vmdelta user set-password admin',
      ),
  ).action(async (name: string, options: AppCliOptions) => {
    const fromEnv = io.env['VMDELTA_PASSWORD'];
    const password = (fromEnv ?? (await readStdin())).replace(/\r?\n$/, '');
    if (password.length < 8) throw new Error('the password needs at least 8 characters');
    if (!/^[A-Za-z0-9._@-]{1,100}$/.test(name))
      throw new Error('user names: letters, digits, ".", "_", "@" and "-"');
    const hash = await hashPassword(password);
    await withApp(options, async (app) => {
      app.store.setUserPasswordHash(name, hash, app.clock.nowMs());
    });
    io.stdout.write(`password of ${name} set\n`);
  });

  withAppOptions(
    user
      .command('token <name> <label>')
      .description(
        'create an API token for a user (printed once; send as "Authorization: Bearer")',
      ),
  ).action(async (name: string, label: string, options: AppCliOptions) => {
    await withApp(options, async (app) => {
      if (app.store.getUserPasswordHash(name) === undefined) throw new Error(`no user ${name}`);
      io.stdout.write(`${createApiToken(app.store, name, label, app.clock.nowMs())}\n`);
    });
  });
}
