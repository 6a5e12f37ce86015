/**
 * `vmdelta nbd info|map|checksum <uri>`: diagnosing NBD access (and a handy oracle for tests).
 * URIs follow the NBD URI standard; TLS material comes from the URI (tls-certificates=DIR) or the
 * --tls-* options.
 */
import type { Command } from 'commander';
import {
  NBD_CONTEXT_BASE_ALLOCATION,
  formatNbdUri,
  iterateNbdExtents,
  openNbdClient,
  openNbdPool,
  parseNbdUri,
} from '../../nbd/index.ts';
import { printJson, type CliIo } from '../io.ts';
import { withCommandProgress } from '../render/progress.ts';
import { addTlsOptions, tlsOptionsFrom, type TlsCliOptions } from '../nbd/tls-options.ts';
import { extentJson, formatExtentLine, formatNbdInfo, nbdInfoJson } from '../nbd/render.ts';
import { sha256OfNbdExport } from '../nbd/checksum.ts';

const URI_HELP = `
URIs: nbd://HOST[:PORT]/EXPORT, nbds://HOST[:PORT]/EXPORT (TLS),
      nbd+unix:///EXPORT?socket=PATH, nbds+unix:///EXPORT?socket=PATH
      TLS: add ?tls-certificates=DIR, or use --tls-certificates/--tls-ca/--tls-pin.`;

function parsePositive(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 64)
    throw new Error(`expected an integer from 1 to 64, got ${value}`);
  return parsed;
}

export function registerNbd(program: Command, io: CliIo): void {
  const nbd = program
    .command('nbd')
    .description('inspect NBD exports (info, allocation or dirty maps, checksum)');

  addTlsOptions(
    nbd
      .command('info')
      .description('show an export: size, transmission flags, block sizes, metadata contexts')
      .argument('<uri>', 'NBD URI')
      .option('--json', 'print JSON'),
  )
    .addHelpText(
      'after',
      `${URI_HELP}\n\nExample:\n  vmdelta nbd info 'nbd+unix:///?socket=/run/nbd.sock'\n`,
    )
    .action(async (uri: string, options: TlsCliOptions & { json?: boolean }) => {
      const target = parseNbdUri(uri);
      const tls = tlsOptionsFrom(options);
      const client = await openNbdClient({
        uri: target,
        ...(tls === undefined ? {} : { tls }),
        listMetaContexts: [],
        listExports: true,
      });
      try {
        const json = nbdInfoJson(formatNbdUri(target), client.info);
        if (options.json === true) printJson(io, json);
        else io.stdout.write(formatNbdInfo(json));
      } finally {
        await client.disconnect();
      }
    });

  addTlsOptions(
    nbd
      .command('map')
      .description(
        'print the extents of a metadata context, one per line: offset length flags description',
      )
      .argument('<uri>', 'NBD URI')
      .option(
        '--context <name>',
        'base:allocation or qemu:dirty-bitmap:NAME',
        NBD_CONTEXT_BASE_ALLOCATION,
      )
      .option('--json', 'print a JSON array of {offset, length, type, description}'),
  )
    .addHelpText(
      'after',
      `${URI_HELP}\n\nExample:\n  vmdelta nbd map --context qemu:dirty-bitmap:bm0 nbd://127.0.0.1:10809/disk\n`,
    )
    .action(async (uri: string, options: TlsCliOptions & { json?: boolean; context: string }) => {
      const tls = tlsOptionsFrom(options);
      const client = await openNbdClient({
        uri,
        ...(tls === undefined ? {} : { tls }),
        metaContexts: [options.context],
      });
      try {
        const extents = [];
        for await (const extent of iterateNbdExtents(client, options.context)) {
          if (options.json === true) extents.push(extentJson(options.context, extent));
          else io.stdout.write(formatExtentLine(options.context, extent));
        }
        if (options.json === true) printJson(io, extents);
      } finally {
        await client.disconnect();
      }
    });

  addTlsOptions(
    nbd
      .command('checksum')
      .description('sha256 of the whole export, printed as sha256sum does: <hex>  <uri>')
      .argument('<uri>', 'NBD URI')
      .option(
        '--connections <n>',
        'NBD connections (used when the export allows several)',
        parsePositive,
        1,
      ),
  )
    .addHelpText(
      'after',
      `${URI_HELP}\n\nExample:\n  vmdelta nbd checksum --connections 4 nbd://host/disk\n`,
    )
    .action(async (uri: string, options: TlsCliOptions & { connections: number }) => {
      const tls = tlsOptionsFrom(options);
      const pool = await openNbdPool({
        uri,
        connections: options.connections,
        ...(tls === undefined ? {} : { tls }),
      });
      try {
        const sha256 = await withCommandProgress(io, false, (progress) =>
          sha256OfNbdExport(pool, progress),
        );
        io.stdout.write(`${sha256}  ${uri}\n`);
      } finally {
        await pool.close();
      }
    });
}
