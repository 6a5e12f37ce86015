/** `vmdelta vhd info|check|convert`: inspect, validate and convert VHD files. */
import type { Command } from 'commander';
import { printJson, type CliIo } from '../io.ts';
import { EXIT_FINDINGS } from '../exit-codes.ts';
import { formatVhdInfo, readVhdInfo } from '../vhd/vhd-info.ts';
import { convertImage } from '../vhd/vhd-convert.ts';
import { checkVhdFile } from '../../vhd/index.ts';
import { CoreError, formatBytes } from '../../core/index.ts';

export function registerVhd(program: Command, io: CliIo): void {
  const vhd = program
    .command('vhd')
    .description('inspect, check and convert VHD files (dynamic, differencing, fixed)');
  vhd
    .command('info <file>')
    .description('show footer, header, allocation and parent of a VHD')
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  vmdelta vhd info disk.vhd --json')
    .action(async (file: string, options: { json?: boolean }) => {
      const info = await readVhdInfo(file);
      if (options.json === true) printJson(io, info);
      else io.stdout.write(formatVhdInfo(info));
    });
  vhd
    .command('check <file>')
    .description(
      `check a VHD against blktap's vhd-util rules; exit ${EXIT_FINDINGS} listing each violation`,
    )
    .option('--json', 'print JSON')
    .addHelpText('after', '\nExample:\n  vmdelta vhd check child.vhd')
    .action(async (file: string, options: { json?: boolean }) => {
      const report = await checkVhdFile(file);
      if (options.json === true)
        printJson(io, {
          path: report.path,
          ok: report.problems.length === 0,
          problems: report.problems,
        });
      else if (report.problems.length === 0) io.stdout.write(`${file}: ok\n`);
      else {
        io.stdout.write(`${file}: ${report.problems.length} violation(s)\n`);
        for (const problem of report.problems)
          io.stdout.write(`  ${problem.field}: ${problem.message}\n`);
      }
      if (report.problems.length > 0) process.exitCode = EXIT_FINDINGS;
    });
  vhd
    .command('convert <in> <out>')
    .description('raw -> dynamic VHD, VHD or differencing chain (flattened) -> raw or dynamic VHD')
    .option('--to <format>', 'output format: raw or vhd (default: from the output extension)')
    .addHelpText(
      'after',
      '\nExamples:\n  vmdelta vhd convert disk.raw disk.vhd\n  vmdelta vhd convert child.vhd flat.raw',
    )
    .action(async (input: string, output: string, options: { to?: string }) => {
      if (options.to !== undefined && options.to !== 'raw' && options.to !== 'vhd')
        throw new CoreError('INVALID_ARGUMENT', `--to must be raw or vhd, not ${options.to}`);
      const result = await convertImage(input, output, options.to);
      io.stdout.write(
        `${input} (${result.from}) -> ${output} (${result.to}): ${formatBytes(result.sizeBytes)}, ${result.blocksWritten} blocks\n`,
      );
    });
}
