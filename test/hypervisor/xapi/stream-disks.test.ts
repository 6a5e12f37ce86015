// Re-blocking of stream exports (property tests): a source of S-byte blocks regrouped to B-byte
// blocks (split when B < S; merged when B > S, full sources only) gives the same disk image, the
// block set announced is exactly the set yielded, and every block has its exact length; a raw
// export cut into arbitrary chunks gives the image back, and a short one is a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryDisk, blockCountFor, type DiskSource } from '../../../src/disk/index.ts';
import { canRegroup, rawStreamDisk, regroupDisk } from '../../../src/hypervisor/xapi/index.ts';

const KiB = 1024;

async function image(source: DiskSource): Promise<{ image: Buffer; yielded: number[] }> {
  const out = Buffer.alloc(source.sizeBytes);
  const yielded: number[] = [];
  for await (const block of source.readBlocks()) {
    const expected = Math.min(
      source.blockSizeBytes,
      source.sizeBytes - block.index * source.blockSizeBytes,
    );
    assert.equal(block.data.length, expected, `block ${block.index} length`);
    block.data.copy(out, block.index * source.blockSizeBytes);
    yielded.push(block.index);
  }
  return { image: out, yielded };
}

test('regroupDisk keeps the image and the announced blocks (split and merge)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(4, 8, 16, 32),
      fc.constantFrom(4, 8, 16, 32, 64),
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom('full', 'delta'),
      fc.integer({ min: 0, max: 2 ** 31 }),
      async (fromKiB, toKiB, sectorsTail, kind, seed) => {
        const fromBytes = fromKiB * KiB;
        const toBytes = toKiB * KiB;
        fc.pre(canRegroup(kind, fromBytes, toBytes));
        const sizeBytes = 3 * fromBytes + sectorsTail * 512;
        const data = new Map<number, Buffer>();
        let state = seed;
        for (let index = 0; index < blockCountFor(sizeBytes, fromBytes); index += 1) {
          state = (state * 1103515245 + 12345) % 2 ** 31;
          if (state % 3 === 0) continue;
          const length = Math.min(fromBytes, sizeBytes - index * fromBytes);
          data.set(index, Buffer.alloc(length, (state % 250) + 1));
        }
        const source = new MemoryDisk({
          sizeBytes,
          blockSizeBytes: fromBytes,
          kind: kind,
          data,
        });
        const direct = await image(source);
        const regrouped = regroupDisk(
          new MemoryDisk({
            sizeBytes,
            blockSizeBytes: fromBytes,
            kind: kind,
            data,
          }),
          toBytes,
        );
        const result = await image(regrouped);
        assert.ok(result.image.equals(direct.image));
        assert.deepEqual(result.yielded, regrouped.blocks.toArray());
        assert.equal(regrouped.kind, kind);
      },
    ),
    { numRuns: 150 },
  );
  assert.throws(
    () =>
      regroupDisk(
        new MemoryDisk({
          sizeBytes: 8 * KiB,
          blockSizeBytes: 4 * KiB,
          kind: 'delta',
          data: new Map(),
        }),
        8 * KiB,
      ),
    { code: 'XAPI_UNSUPPORTED' },
  );
});

test('rawStreamDisk rebuilds the image from any chunking; a short export is typed', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 50_000 }),
      fc.array(fc.integer({ min: 1, max: 9_000 }), { minLength: 1, maxLength: 20 }),
      async (sizeBytes, cuts) => {
        const bytes = Buffer.alloc(sizeBytes);
        for (let i = 0; i < sizeBytes; i += 1) bytes[i] = (i * 7) & 0xff;
        const chunks = async function* (): AsyncGenerator<Buffer> {
          let offset = 0;
          let i = 0;
          while (offset < sizeBytes) {
            const length = cuts[i % cuts.length] ?? 1;
            yield bytes.subarray(offset, offset + length);
            offset += length;
            i += 1;
          }
        };
        const disk = rawStreamDisk(chunks(), sizeBytes, 4 * KiB, () => Promise.resolve());
        const { image: out } = await image(disk);
        assert.ok(out.equals(bytes));
      },
    ),
    { numRuns: 100 },
  );
  const short = rawStreamDisk(
    (async function* () {
      yield Buffer.alloc(5000);
    })(),
    16 * KiB,
    4 * KiB,
    () => Promise.resolve(),
  );
  await assert.rejects(image(short), { code: 'XAPI_STREAM_TRUNCATED' });
});
