/**
 * The byte source the random-access reader works on: a length and positional reads. The local
 * file implementation uses one FileHandle; a ranged-GET implementation (object store, HTTP) fits
 * the same interface.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { VhdError } from './errors.ts';

export interface ByteSource {
  /** For messages: a path or URL without secrets. */
  readonly name: string;
  readonly sizeBytes: number;
  /** Exactly `lengthBytes` bytes at `offsetBytes` (a fresh buffer); rejects if out of range. */
  readAt(offsetBytes: number, lengthBytes: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Reads a range that must lie inside the source; VHD_TRUNCATED names the field otherwise. */
export async function readRange(
  source: ByteSource,
  offsetBytes: number,
  lengthBytes: number,
  field: string,
): Promise<Buffer> {
  if (offsetBytes < 0 || offsetBytes + lengthBytes > source.sizeBytes)
    throw new VhdError(
      'VHD_TRUNCATED',
      `${field}: [${offsetBytes}, ${offsetBytes + lengthBytes}) lies beyond the end of ${source.name} (${source.sizeBytes} bytes)`,
      { details: { field, offsetBytes, lengthBytes, fileSizeBytes: source.sizeBytes } },
    );
  return source.readAt(offsetBytes, lengthBytes);
}

class FileByteSource implements ByteSource {
  readonly name: string;
  readonly sizeBytes: number;
  readonly #handle: FileHandle;

  constructor(name: string, handle: FileHandle, sizeBytes: number) {
    this.name = name;
    this.#handle = handle;
    this.sizeBytes = sizeBytes;
  }

  async readAt(offsetBytes: number, lengthBytes: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(lengthBytes);
    let filled = 0;
    while (filled < lengthBytes) {
      const { bytesRead } = await this.#handle.read(
        buffer,
        filled,
        lengthBytes - filled,
        offsetBytes + filled,
      );
      if (bytesRead === 0)
        throw new VhdError(
          'VHD_TRUNCATED',
          `${this.name}: end of file at ${offsetBytes + filled}`,
          {
            details: { offsetBytes: offsetBytes + filled },
          },
        );
      filled += bytesRead;
    }
    return buffer;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

export async function openFileByteSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    return new FileByteSource(path, handle, size);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** A byte source over a buffer (tests, small objects already in memory). */
export function bufferByteSource(name: string, buffer: Buffer): ByteSource {
  return {
    name,
    sizeBytes: buffer.length,
    readAt: async (offsetBytes, lengthBytes) => {
      if (offsetBytes < 0 || offsetBytes + lengthBytes > buffer.length)
        throw new VhdError(
          'VHD_TRUNCATED',
          `${name}: [${offsetBytes}, +${lengthBytes}) beyond the end`,
          {
            details: { offsetBytes, lengthBytes },
          },
        );
      return Buffer.from(buffer.subarray(offsetBytes, offsetBytes + lengthBytes));
    },
    close: async () => undefined,
  };
}
