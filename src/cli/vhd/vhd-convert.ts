/**
 * `vmdelta vhd convert <in> <out>`: raw → dynamic VHD, VHD (dynamic, fixed or a differencing
 * chain, flattened) → raw, or a chain → one dynamic VHD. The input format is detected from the
 * file (a "conectix" footer); the output format from `--to` or the output extension (.vhd).
 */
import { openVhdFileDisk, writeRawFile, type DiskSource } from '../../disk/index.ts';
import { FOOTER_COOKIE, openFileByteSource, writeVhdFile } from '../../vhd/index.ts';
import { CoreError } from '../../core/index.ts';
import { openRawFileSource } from './raw-file-source.ts';

export type ImageFormat = 'raw' | 'vhd';

export async function detectFormat(path: string): Promise<ImageFormat> {
  const source = await openFileByteSource(path);
  try {
    if (source.sizeBytes < 512) return 'raw';
    const tail = await source.readAt(source.sizeBytes - 512, 8);
    return tail.toString('latin1') === FOOTER_COOKIE ? 'vhd' : 'raw';
  } finally {
    await source.close();
  }
}

export interface ConvertResult {
  readonly from: ImageFormat;
  readonly to: ImageFormat;
  readonly sizeBytes: number;
  readonly blocksWritten: number;
}

export async function convertImage(
  inPath: string,
  outPath: string,
  to?: ImageFormat,
): Promise<ConvertResult> {
  const from = await detectFormat(inPath);
  const target = to ?? (outPath.toLowerCase().endsWith('.vhd') ? 'vhd' : 'raw');
  if (from === 'raw' && target === 'raw')
    throw new CoreError(
      'INVALID_ARGUMENT',
      `${inPath} is raw and so is the output: nothing to convert (name the output *.vhd or pass --to vhd)`,
    );
  const source: DiskSource =
    from === 'vhd' ? await openVhdFileDisk(inPath) : await openRawFileSource(inPath);
  try {
    if (target === 'vhd') await writeVhdFile(source, outPath);
    else await writeRawFile(source, outPath);
    return { from, to: target, sizeBytes: source.sizeBytes, blocksWritten: source.blocks.count };
  } finally {
    await source.close();
  }
}
