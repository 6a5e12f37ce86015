import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  DiskType,
  PlatformCode,
  checkVhdFile,
  encodeUtf16be,
  toVhdTimestamp,
} from '../../src/vhd/index.ts';
import { makeTempDir } from '../harness/index.ts';
import { MiB, patternBytes } from './helpers.ts';
import { craftVhd, editHeader, refreshFooters } from './craft.ts';

const parentUuid = '22222222-2222-4222-8222-222222222222';

async function fields(dir: string, name: string, bytes: Buffer): Promise<string[]> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  const report = await checkVhdFile(path);
  return report.problems.map((p) => p.field);
}

function locator(code: number, text: string, encoding: BufferEncoding) {
  const data = Buffer.from(text, encoding);
  return {
    entry: { platformCode: code, dataSpace: 1, dataLengthBytes: data.length, reserved: 0 },
    data,
  };
}

test('vhd check lists each violated vhd-util rule', async () => {
  const dir = await makeTempDir();
  try {
    const blocks = [0, 1].map((index) => ({ index, data: patternBytes(2 * MiB, index) }));
    const good = craftVhd({ sizeBytes: 4 * MiB, blocks });
    assert.deepEqual(await fields(dir.path, 'good.vhd', good), []);
    const future = toVhdTimestamp(new Date(Date.now() + 3600_000));
    const bad: [string, Buffer, string[]][] = [
      [
        'future.vhd',
        refreshFooters(good, (f) => f.writeUInt32BE(future, 24)),
        ['footer.timestamp'],
      ],
      [
        'features.vhd',
        refreshFooters(good, (f) => f.writeUInt32BE(0x10, 8)),
        ['footer.features', 'footer.features'],
      ],
      ['reserved.vhd', refreshFooters(good, (f) => (f[300] = 1)), ['footer.reserved']],
      [
        'geometry.vhd',
        refreshFooters(good, (f) => {
          f.writeUInt16BE(65535, 56);
          f[58] = 16;
          f[59] = 255;
        }),
        ['footer.geometry'],
      ],
      [
        'checksum.vhd',
        (() => {
          const b = Buffer.from(good);
          b[b.length - 10] = 1;
          return b;
        })(),
        ['footer.checksum', 'footer.reserved', 'footer copy'],
      ],
      [
        'overlap.vhd',
        (() => {
          const b = Buffer.from(good);
          b.writeUInt32BE(b.readUInt32BE(1536) + 8, 1540);
          return b;
        })(),
        ['bat[1]'],
      ],
      [
        'past-end.vhd',
        (() => {
          const b = Buffer.from(good);
          b.writeUInt32BE(b.length / 512 - 2, 1540);
          return b;
        })(),
        ['bat[1]'],
      ],
      [
        'dyn-parent.vhd',
        editHeader(good, (h) => encodeUtf16be('x.vhd').copy(h, 64)),
        ['header.parentUnicodeName'],
      ],
      [
        'header-offset.vhd',
        editHeader(good, (h) => h.writeBigUInt64BE(0n, 8)),
        ['header.dataOffset'],
      ],
    ];
    for (const [name, bytes, expected] of bad)
      assert.deepEqual(await fields(dir.path, name, bytes), expected, name);

    // Differencing disks: locators must lead to the parent with the right uuid and basename.
    await writeFile(
      join(dir.path, 'p.vhd'),
      craftVhd({ sizeBytes: 4 * MiB, blocks: [], uuid: parentUuid }),
    );
    const child = (locators: ReturnType<typeof locator>[], uuid = parentUuid) =>
      craftVhd({
        sizeBytes: 4 * MiB,
        blocks: [blocks[0] ?? { index: 0, data: Buffer.alloc(0) }],
        diskType: DiskType.differencing,
        parentUuid: uuid,
        parentName: 'p.vhd',
        locators,
        uuid: '44444444-4444-4444-8444-444444444444',
      });
    const w2ru = locator(PlatformCode.W2ru, '.\\p.vhd', 'utf16le');
    const macx = locator(PlatformCode.MacX, 'file://./p.vhd', 'utf8');
    assert.deepEqual(await fields(dir.path, 'c-good.vhd', child([w2ru, macx])), []);
    assert.deepEqual(await fields(dir.path, 'c-none.vhd', child([])), ['header.parentLocators']);
    assert.deepEqual(
      await fields(dir.path, 'c-uuid.vhd', child([w2ru], '55555555-5555-4555-8555-555555555555')),
      ['header.parentUuid'],
    );
    assert.deepEqual(
      await fields(dir.path, 'c-name.vhd', child([locator(PlatformCode.MacX, './q.vhd', 'utf8')])),
      ['header.parentLocator0', 'header.parentLocators'],
    );
  } finally {
    await dir.remove();
  }
});
