/** Options every command that touches configuration shares, and opening the App from them. */
import type { Command } from 'commander';
import { App } from '../app/index.ts';

export interface AppCliOptions {
  readonly dataDir?: string;
  readonly config?: string;
  readonly json?: boolean;
}

export function withAppOptions(command: Command): Command {
  return command
    .option(
      '--data-dir <dir>',
      'data folder (job store, scratch files); default VMDELTA_DATA_DIR, /var/lib/vmdelta as root',
    )
    .option(
      '--config <file>',
      'configuration file declaring remotes, sources and jobs (default <data-dir>/config.json)',
    )
    .option('--json', 'print JSON for scripts');
}

/** Runs `fn` with an opened App, closing it afterwards. */
export async function withApp<T>(options: AppCliOptions, fn: (app: App) => Promise<T>): Promise<T> {
  const app = App.open({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.config === undefined ? {} : { configFile: options.config }),
  });
  try {
    return await fn(app);
  } finally {
    await app.close();
  }
}
