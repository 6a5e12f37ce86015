import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VmdeltaError } from '../../src/core/index.ts';
import {
  VhdReader,
  bufferByteSource,
  decodeFooter,
  decodeHeader,
  footerChecksum,
  headerChecksum,
  openVhdStream,
} from '../../src/vhd/index.ts';
import { MiB, patternBytes } from './helpers.ts';
import { chunked, craftVhd } from './craft.ts';

/** Only typed VHD errors may escape a decoder. */
function expectTyped(error: unknown): void {
  assert.ok(
    error instanceof VmdeltaError && error.code.startsWith('VHD_'),
    `untyped error: ${String(error)}`,
  );
}

const base = craftVhd({
  sizeBytes: 4 * MiB + 1024,
  blocks: [
    {
      index: 0,
      data: patternBytes(2 * MiB, 1),
      sectors: [
        [0, 100],
        [200, 4096],
      ],
    },
    { index: 2, data: patternBytes(1024, 2) },
  ],
  fileOrder: [2, 0],
});

/** Random byte edits in the metadata (first 2 KiB) or anywhere, optionally with checksums fixed. */
const mutation = fc.record({
  edits: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 }), fc.boolean()), {
    maxLength: 8,
  }),
  fixChecksums: fc.boolean(),
  cutAt: fc.option(fc.nat(), { nil: undefined }),
  chunkBytes: fc.integer({ min: 1, max: 70_000 }),
});

interface Mutation {
  readonly edits: [number, number, boolean][];
  readonly fixChecksums: boolean;
  readonly cutAt: number | undefined;
  readonly chunkBytes: number;
}

function mutate(m: Mutation): Buffer {
  const bytes = Buffer.from(base);
  for (const [at, value, metadata] of m.edits)
    bytes[metadata ? at % 2048 : at % bytes.length] = value;
  if (m.fixChecksums) {
    bytes.writeUInt32BE(footerChecksum(bytes), 64);
    bytes.writeUInt32BE(headerChecksum(bytes.subarray(512)), 512 + 36);
    bytes.set(bytes.subarray(0, 512), bytes.length - 512);
  }
  return m.cutAt === undefined ? bytes : bytes.subarray(0, m.cutAt % (bytes.length + 1));
}

test('footer and header decoders: random bytes give a value or a typed error', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 1100 }),
      fc.boolean(),
      (random, withCookies) => {
        const bytes = Buffer.from(random);
        if (withCookies && bytes.length >= 1024) {
          bytes.write('conectix', 0, 'latin1');
          bytes.writeUInt32BE(footerChecksum(bytes), 64);
        }
        try {
          decodeFooter(bytes);
        } catch (error) {
          expectTyped(error);
        }
        if (withCookies && bytes.length >= 1024) {
          bytes.write('cxsparse', 0, 'latin1');
          bytes.writeUInt32BE(headerChecksum(bytes), 36);
        }
        try {
          decodeHeader(bytes, 4 * MiB);
        } catch (error) {
          expectTyped(error);
        }
      },
    ),
    { numRuns: 500 },
  );
});

test('stream reader: mutated or truncated VHDs parse or fail with a typed error', async () => {
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const bytes = mutate(m);
      try {
        const stream = await openVhdStream(chunked(bytes, m.chunkBytes), {
          maxBufferedBytes: 8 * MiB,
        });
        for await (const block of stream.blocks())
          assert.equal(block.data.length, stream.blockSizeBytes);
      } catch (error) {
        expectTyped(error);
      }
    }),
    { numRuns: 100 },
  );
});

test('random-access reader: mutated or truncated VHDs open or fail with a typed error', async () => {
  await fc.assert(
    fc.asyncProperty(mutation, async (m) => {
      const bytes = mutate(m);
      try {
        const reader = await VhdReader.open(bufferByteSource('fuzz', bytes));
        for (const index of reader.allocatedBlocks()) await reader.readBlock(index);
        await reader.locatorPaths();
      } catch (error) {
        expectTyped(error);
      }
    }),
    { numRuns: 100 },
  );
});
