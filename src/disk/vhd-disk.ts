/**
 * VhdDisk: a VHD file or stream as a DiskSource (blocks = the VHD's 2 MiB blocks).
 *
 * - A dynamic VHD is a `full` source: its allocated blocks, absent sectors reading as zeros.
 * - A differencing VHD read as a chain (`openVhdFileDisk`, default) is a `full` source: the union
 *   of the blocks allocated anywhere in the chain, each merged newest-first.
 * - A differencing VHD read alone (a file with `layer: true`, or a stream) is a `delta` source:
 *   its allocated blocks. A block whose sector bitmap is partial is completed from the parent
 *   (read-modify): files open their parent chain lazily, streams need `readParentBlock`, and
 *   without it such a block fails with VHD_PARTIAL_BLOCK (XAPI and XO write whole blocks).
 */
import { BlockSet } from './block-set.ts';
import {
  blockLengthBytes,
  type Block,
  type DiskKind,
  type DiskSource,
  type ReadBlocksOptions,
} from './disk.ts';
import {
  DiskType,
  VhdError,
  openVhdChain,
  openVhdStream,
  overlayPresentSectors,
  type OpenVhdStreamOptions,
  type ValidVhdFooter,
  type VhdBlock,
  type VhdChain,
  type VhdHeader,
  type VhdStream,
} from '../vhd/index.ts';
import { throwIfAborted } from '../core/index.ts';

/** The parent's content of a block (blockSizeBytes, a buffer the caller may modify), undefined = zeros. */
export type ReadParentBlock = (index: number) => Promise<Buffer | undefined>;

export class VhdDisk implements DiskSource {
  readonly sizeBytes: number;
  readonly blockSizeBytes: number;
  readonly kind: DiskKind;
  readonly blocks: BlockSet;
  readonly footer: ValidVhdFooter;
  readonly header: VhdHeader | undefined;
  readonly #produce: (signal: AbortSignal | undefined) => AsyncIterable<Block>;
  readonly #close: () => Promise<void>;

  constructor(options: {
    footer: ValidVhdFooter;
    header: VhdHeader | undefined;
    blockSizeBytes: number;
    kind: DiskKind;
    blocks: BlockSet;
    produce: (signal: AbortSignal | undefined) => AsyncIterable<Block>;
    close: () => Promise<void>;
  }) {
    this.footer = options.footer;
    this.header = options.header;
    this.sizeBytes = options.footer.sizeBytes;
    this.blockSizeBytes = options.blockSizeBytes;
    this.kind = options.kind;
    this.blocks = options.blocks;
    this.#produce = options.produce;
    this.#close = options.close;
  }

  readBlocks(options: ReadBlocksOptions = {}): AsyncIterable<Block> {
    return this.#produce(options.signal);
  }

  close(): Promise<void> {
    return this.#close();
  }
}

function trim(index: number, data: Buffer, sizeBytes: number, blockSizeBytes: number): Buffer {
  const lengthBytes = blockLengthBytes(index, sizeBytes, blockSizeBytes);
  return lengthBytes === data.length ? data : data.subarray(0, lengthBytes);
}

async function completeBlock(
  block: VhdBlock,
  readParentBlock: ReadParentBlock | undefined,
): Promise<Buffer> {
  if (block.sectorBitmap === undefined) return block.data;
  if (readParentBlock === undefined)
    throw new VhdError(
      'VHD_PARTIAL_BLOCK',
      `block ${block.index} holds only some sectors and no parent was given to complete it`,
      { details: { field: `bat[${block.index}]`, index: block.index } },
    );
  const merged = await readParentBlock(block.index);
  if (merged === undefined) return block.data;
  overlayPresentSectors(block.sectorBitmap, block.data, merged);
  return merged;
}

/** A VHD stream (dynamic → full, differencing → delta); resolves once its BAT is read. */
export async function openVhdStreamDisk(
  input: AsyncIterable<Uint8Array>,
  options: OpenVhdStreamOptions & { readParentBlock?: ReadParentBlock } = {},
): Promise<VhdDisk> {
  const stream: VhdStream = await openVhdStream(input, options);
  const { sizeBytes, blockSizeBytes } = stream;
  const blocks = BlockSet.of(Math.ceil(sizeBytes / blockSizeBytes), stream.allocated);
  const readParentBlock = options.readParentBlock;
  const differencing = stream.footer.diskType === DiskType.differencing;
  return new VhdDisk({
    footer: stream.footer,
    header: stream.header,
    blockSizeBytes,
    kind: differencing ? 'delta' : 'full',
    blocks,
    produce: async function* (signal) {
      for await (const block of stream.blocks(signal === undefined ? {} : { signal })) {
        const data = differencing ? await completeBlock(block, readParentBlock) : block.data;
        yield { index: block.index, data: trim(block.index, data, sizeBytes, blockSizeBytes) };
      }
    },
    close: () => stream.close(),
  });
}

/**
 * A VHD file. Default: the whole chain as a full disk. `layer: true`: a differencing file alone
 * as a delta (partial blocks completed from its parents, opened with the chain). Reads run
 * `readAheadBlocks` (default 4) blocks ahead of the consumer.
 */
export async function openVhdFileDisk(
  path: string,
  options: { layer?: boolean; readAheadBlocks?: number } = {},
): Promise<VhdDisk> {
  const readAheadBlocks = Math.max(1, options.readAheadBlocks ?? 4);
  const chain: VhdChain = await openVhdChain(path);
  const tip = chain.tip;
  const layerOnly = options.layer === true && tip.diskType === DiskType.differencing;
  const { sizeBytes, blockSizeBytes, blockCount } = chain;
  const blocks = BlockSet.of(
    blockCount,
    layerOnly ? tip.allocatedBlocks() : chain.allocatedBlocks(),
  );
  return new VhdDisk({
    footer: tip.footer,
    header: tip.header,
    blockSizeBytes,
    kind: layerOnly ? 'delta' : 'full',
    blocks,
    produce: async function* (signal) {
      // Bounded read-ahead: up to `readAheadBlocks` positional reads in flight.
      const pending: { index: number; data: Promise<Buffer | undefined> }[] = [];
      const indexes = blocks[Symbol.iterator]();
      const fill = (): void => {
        while (pending.length < readAheadBlocks) {
          const next = indexes.next();
          if (next.done === true) return;
          const data = chain.readBlock(next.value);
          data.catch(() => undefined); // awaited below; avoid an unhandled rejection meanwhile
          pending.push({ index: next.value, data });
        }
      };
      fill();
      for (let head = pending.shift(); head !== undefined; head = pending.shift()) {
        throwIfAborted(signal);
        const data = (await head.data) ?? Buffer.alloc(blockSizeBytes);
        fill();
        yield { index: head.index, data: trim(head.index, data, sizeBytes, blockSizeBytes) };
      }
    },
    close: () => chain.close(),
  });
}
