/** Errors of the VHD layer: malformed input (naming the field), layout, chains, writer limits. */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const vhdErrors = {
  VHD_TRUNCATED:
    'The VHD ended before a structure or block it announces (truncated file or stream).',
  VHD_BAD_COOKIE: 'A VHD structure does not start with its cookie ("conectix" or "cxsparse").',
  VHD_BAD_CHECKSUM: 'A VHD footer or header checksum does not match its content.',
  VHD_BAD_FIELD: 'A VHD field holds a value that is unsupported, inconsistent or absurd.',
  VHD_BAD_LAYOUT:
    'VHD structures or blocks overlap, or lie beyond the end of the file (BAT, locator or block).',
  VHD_STREAM_ORDER:
    'A VHD stream cannot be read in one pass: its BAT comes after block data, or its blocks are too far out of order for the bounded buffer.',
  VHD_UNSUPPORTED:
    'The VHD uses a feature this reader does not handle (e.g. a fixed VHD as a stream).',
  VHD_TOO_LARGE: 'The disk is larger than a VHD can hold (2040 GiB, the limit of QEMU and XAPI).',
  VHD_INVALID_SOURCE:
    'The block stream given to the VHD writer is inconsistent (block size, order, length, parent).',
  VHD_PARENT_NOT_FOUND: 'No parent locator or parent name of a differencing VHD leads to a file.',
  VHD_PARENT_MISMATCH:
    "A differencing VHD's parent UUID (or block size) does not match the parent file found.",
  VHD_PARTIAL_BLOCK:
    'A differencing VHD block holds only some sectors, and no parent was given to complete it.',
} as const satisfies ErrorCatalogue;

export type VhdErrorCode = keyof typeof vhdErrors;

export class VhdError extends VmdeltaError {
  declare readonly code: VhdErrorCode;
  constructor(code: VhdErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}

/** A VHD_BAD_FIELD error naming the field and its value. */
export function badField(field: string, value: unknown, why: string): VhdError {
  return new VhdError('VHD_BAD_FIELD', `${field} = ${String(value)}: ${why}`, {
    details: { field, value: typeof value === 'bigint' ? value.toString() : value },
  });
}

/** Checks a structure's cookie and checksum, naming the field (`footer.cookie`, `header.checksum`). */
export function checkCookieAndChecksum(
  structure: 'footer' | 'header',
  cookie: { readonly stored: string; readonly expected: string },
  checksum: { readonly stored: number; readonly computed: number },
): void {
  if (cookie.stored !== cookie.expected)
    throw new VhdError(
      'VHD_BAD_COOKIE',
      `${structure}.cookie is ${JSON.stringify(cookie.stored)}`,
      {
        details: { field: `${structure}.cookie` },
      },
    );
  if (checksum.stored !== checksum.computed)
    throw new VhdError(
      'VHD_BAD_CHECKSUM',
      `${structure}.checksum is 0x${checksum.stored.toString(16)}, content sums to 0x${checksum.computed.toString(16)}`,
      {
        details: {
          field: `${structure}.checksum`,
          stored: checksum.stored,
          computed: checksum.computed,
        },
      },
    );
}
