/**
 * `vmdelta serve`: the always-on service (scheduler, REST API, server-sent events, web page) in
 * one process over the embedded job store. Listens on 127.0.0.1:8087 unless told otherwise; HTTPS
 * with --tls-cert/--tls-key. Stops gracefully on SIGTERM/SIGINT.
 */
import type { Command } from 'commander';
import packageJson from '../../../package.json' with { type: 'json' };
import { App } from '../../app/index.ts';
import type { Logger, LogLevel } from '../../core/index.ts';
import { startService } from '../../server/index.ts';
import { formatRunLogText } from '../render/run-log-text.ts';
import type { AppCliOptions } from '../app-options.ts';
import type { CliIo } from '../io.ts';

interface ServeOptions extends AppCliOptions {
  host: string;
  port: string;
  tlsCert?: string;
  tlsKey?: string;
  concurrency: string;
  remoteConcurrency: string;
  webDir?: string;
}

/** One line per record on stderr (journald adds the time). */
function lineLogger(io: CliIo, fields: Readonly<Record<string, unknown>> = {}): Logger {
  return {
    log: (level: LogLevel, message: string, extra = {}) => {
      if (level === 'debug' && io.env['VMDELTA_DEBUG'] !== '1') return;
      const all = { ...fields, ...extra };
      const details = Object.keys(all).length === 0 ? '' : ` ${JSON.stringify(all)}`;
      io.stderr.write(`${level}: ${message}${details}\n`);
    },
    child: (more) => lineLogger(io, { ...fields, ...more }),
  };
}

export function registerServe(program: Command, io: CliIo): void {
  program
    .command('serve')
    .description('run the scheduler, the REST API and the web page (see README "Service")')
    .option(
      '--data-dir <dir>',
      'data folder (job store); default VMDELTA_DATA_DIR, /var/lib/vmdelta as root',
    )
    .option('--config <file>', 'configuration file declaring remotes, sources and jobs')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 = any free port)', '8087')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--concurrency <n>', 'runs at once', '2')
    .option('--remote-concurrency <n>', 'runs at once per remote and per source', '1')
    .option('--web-dir <dir>', 'serve the web page from this folder (default: the bundled web/)')
    .addHelpText(
      'after',
      '\nFirst create a user: echo "$PASSWORD" | vmdelta user set-password admin\nExample:\n  vmdelta serve --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem',
    )
    .action(async (options: ServeOptions) => {
      if ((options.tlsCert === undefined) !== (options.tlsKey === undefined))
        throw new Error('give both --tls-cert and --tls-key');
      const logger = lineLogger(io);
      const app = App.open({
        ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
        ...(options.config === undefined ? {} : { configFile: options.config }),
        logger,
      });
      const service = await startService({
        app,
        host: options.host,
        port: Number(options.port),
        ...(options.tlsCert === undefined || options.tlsKey === undefined
          ? {}
          : { tls: { certPath: options.tlsCert, keyPath: options.tlsKey } }),
        ...(options.webDir === undefined ? {} : { webDir: options.webDir }),
        globalConcurrency: Number(options.concurrency),
        resourceConcurrency: Number(options.remoteConcurrency),
        formatRunLog: formatRunLogText,
        logger,
        version: packageJson.version,
      }).catch(async (error: unknown) => {
        await app.close();
        throw error;
      });
      for (const runId of service.interrupted)
        io.stdout.write(`run ${runId} was interrupted by the previous stop; marked interrupted\n`);
      if (app.store.countUsers() === 0)
        io.stdout.write('no user yet: create one with `vmdelta user set-password admin`\n');
      io.stdout.write(`vmdelta serve: listening on ${service.url} (data ${app.dataDir})\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          io.stdout.write(`vmdelta serve: ${signal}, stopping\n`);
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          resolve();
        };
        const onTerm = (): void => stop('SIGTERM');
        const onInt = (): void => stop('SIGINT');
        process.on('SIGTERM', onTerm);
        process.on('SIGINT', onInt);
      });
      await service.close();
      io.stdout.write('vmdelta serve: stopped\n');
    });
}
