/** `vmdelta remote add|list|test`: where backups go (a local folder or S3-compatible storage). */
import { InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { redactRemote } from '../../app/index.ts';
import { formatBytes } from '../../core/index.ts';
import { DEFAULT_ZSTD_LEVEL, type CompressionConfig } from '../../repository/index.ts';
import { openStore, testStore } from '../../storage/index.ts';
import { withApp, withAppOptions, type AppCliOptions } from '../app-options.ts';
import { printJson, type CliIo } from '../io.ts';

interface AddOptions extends AppCliOptions {
  path?: string;
  s3Endpoint?: string;
  bucket?: string;
  region?: string;
  prefix?: string;
  accessKeyId?: string;
  secretAccessKeyFile?: string;
  name?: string;
  blockSizeKib?: string;
  compression?: CompressionConfig;
}

/** `none`, `zstd` or `zstd:<level>` (level −7 to 19; negative levels are faster). */
export function parseCompressionOption(text: string): CompressionConfig {
  if (text === 'none') return { codec: 'none' };
  const match = /^zstd(?::(-?\d{1,2}))?$/.exec(text);
  const level = match === null ? Number.NaN : Number(match[1] ?? DEFAULT_ZSTD_LEVEL);
  if (!Number.isInteger(level) || level < -7 || level > 19) {
    throw new InvalidArgumentError('expected none, zstd or zstd:<level> with level -7 to 19');
  }
  return { codec: 'zstd', level };
}

export function registerRemote(program: Command, io: CliIo): void {
  const remote = program.command('remote').description('manage remotes: where backups are stored');

  withAppOptions(
    remote
      .command('add <id>')
      .description(
        'add (or replace) a remote: a local folder (--path) or S3-compatible storage (--s3-endpoint)',
      )
      .option('--path <dir>', 'local folder')
      .option('--s3-endpoint <url>', 'S3 endpoint, e.g. https://s3.example.com')
      .option('--bucket <name>', 'S3 bucket')
      .option('--region <region>', 'S3 region', 'us-east-1')
      .option('--prefix <prefix>', 'key prefix inside the bucket')
      .option('--access-key-id <id>', 'S3 access key id (default: AWS_ACCESS_KEY_ID)')
      .option(
        '--secret-access-key-file <file>',
        'file holding the S3 secret key (default: AWS_SECRET_ACCESS_KEY)',
      )
      .option('--name <name>', 'display name')
      .option('--block-size-kib <n>', 'repository block size when the remote is new (default 2048)')
      .option(
        '--compression <codec>',
        `block compression when the remote is new: none, zstd or zstd:<level> (default zstd:${DEFAULT_ZSTD_LEVEL})`,
        parseCompressionOption,
      )
      .addHelpText(
        'after',
        '\nExamples:\n  vmdelta remote add nas --path /mnt/backups\n  vmdelta remote add s3 --s3-endpoint https://s3.example.com --bucket backups',
      ),
  ).action(async (id: string, options: AddOptions) => {
    await withApp(options, async (app) => {
      const store =
        options.path !== undefined
          ? { type: 'local', path: options.path }
          : {
              type: 's3',
              endpoint: options.s3Endpoint,
              bucket: options.bucket,
              region: options.region,
              forcePathStyle: true,
              ...(options.prefix === undefined ? {} : { prefix: options.prefix }),
              ...(options.accessKeyId === undefined ? {} : { accessKeyId: options.accessKeyId }),
              ...(options.secretAccessKeyFile === undefined
                ? {}
                : { secretAccessKey: readFileSync(options.secretAccessKeyFile, 'utf8').trim() }),
            };
      const saved = app.saveRemote({
        id,
        store,
        ...(options.name === undefined ? {} : { name: options.name }),
        ...(options.blockSizeKib === undefined
          ? {}
          : { blockSizeBytes: Number(options.blockSizeKib) * 1024 }),
        ...(options.compression === undefined ? {} : { compression: options.compression }),
      });
      if (options.json === true) printJson(io, redactRemote(saved));
      else io.stdout.write(`remote ${id} saved\n`);
    });
  });

  withAppOptions(remote.command('list').description('list remotes (secrets hidden)')).action(
    async (options: AppCliOptions) => {
      await withApp(options, async (app) => {
        const remotes = app.remotes().map(redactRemote);
        if (options.json === true) {
          printJson(io, remotes);
          return;
        }
        for (const r of remotes) {
          const where =
            r.store.type === 'local'
              ? r.store.path
              : r.store.type === 's3'
                ? `${r.store.endpoint}/${r.store.bucket}`
                : 'memory';
          io.stdout.write(
            `${r.id}\t${r.store.type}\t${where}${r.name === undefined ? '' : `\t${r.name}`}\n`,
          );
        }
      });
    },
  );

  withAppOptions(
    remote
      .command('test <id>')
      .description('check that the remote can be written, read, listed and cleaned'),
  ).action(async (id: string, options: AppCliOptions) => {
    await withApp(options, async (app) => {
      const config = app.remotes().find((r) => r.id === id);
      if (config === undefined) throw new Error(`no remote ${id}`);
      const store = await openStore(config.store);
      try {
        const result = await testStore(store);
        let usedBytes = 0;
        for await (const info of store.list('')) usedBytes += info.sizeBytes;
        if (options.json === true) printJson(io, { ...result, usedBytes });
        else
          io.stdout.write(
            `remote ${id}: OK (${result.displayName}, round trip ${result.roundTripMs} ms, conditional put ${result.conditionalPut ? 'yes' : 'no'}, ${formatBytes(usedBytes)} used)\n`,
          );
      } finally {
        await store.close();
      }
    });
  });
}
