/**
 * Client-side checks of requests before they are sent (libnbd's strict mode: bounds, alignment,
 * length, payload size, advertised commands; reference checklist §11.6) and of block-status
 * answers (§11.5). Pure functions of the export's facts.
 */
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_CMD_FLAG_FUA,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_FUA,
} from './constants.ts';
import { NbdError, protocolError } from './errors.ts';
import type { NbdExportInfo } from './handshake.ts';
import type { NbdExtent } from './reply-decoder.ts';

export const NBD_COMMAND_NAMES: readonly string[] = [
  'READ',
  'WRITE',
  'DISC',
  'FLUSH',
  'TRIM',
  'CACHE',
  'WRITE_ZEROES',
  'BLOCK_STATUS',
];

export function nbdCommandName(command: number): string {
  return NBD_COMMAND_NAMES[command] ?? String(command);
}

/** Throws NBD_INVALID_REQUEST / NBD_NOT_SUPPORTED; `whole` skips the payload limit (split later). */
export function checkNbdRequest(
  info: NbdExportInfo,
  maxIoBytes: number,
  command: number,
  offsetBytes: number,
  lengthBytes: number,
  whole = false,
): void {
  const name = nbdCommandName(command);
  const invalid = (why: string): never => {
    throw new NbdError('NBD_INVALID_REQUEST', `${name} [${offsetBytes}, +${lengthBytes}): ${why}`, {
      details: { command: name, offsetBytes, lengthBytes },
    });
  };
  if (command === NBD_CMD_FLUSH) return;
  const isWrite =
    command === NBD_CMD_WRITE || command === NBD_CMD_WRITE_ZEROES || command === NBD_CMD_TRIM;
  if (isWrite && (info.transmissionFlags & NBD_FLAG_READ_ONLY) !== 0)
    throw new NbdError('NBD_NOT_SUPPORTED', `${name} on a read-only export`);
  if (command === NBD_CMD_BLOCK_STATUS && info.metaContexts.size === 0)
    throw new NbdError('NBD_NOT_SUPPORTED', 'block status needs a selected meta context');
  const { sizeBytes } = info;
  const { minimumBytes } = info.blockSizes;
  if (!Number.isSafeInteger(offsetBytes) || offsetBytes < 0) invalid('bad offset');
  if (!Number.isInteger(lengthBytes) || lengthBytes <= 0) invalid('empty or bad length');
  if (lengthBytes > 0xffffffff) invalid('length above 2^32 - 1');
  if (offsetBytes + lengthBytes > sizeBytes) invalid(`beyond the export end (${sizeBytes})`);
  if (offsetBytes % minimumBytes !== 0) invalid(`offset not aligned to ${minimumBytes}`);
  if (lengthBytes % minimumBytes !== 0 && offsetBytes + lengthBytes !== sizeBytes)
    invalid(`length not aligned to ${minimumBytes}`);
  if (!whole && (command === NBD_CMD_READ || command === NBD_CMD_WRITE) && lengthBytes > maxIoBytes)
    invalid(`above the maximum payload ${maxIoBytes}`);
}

/** Checks §11.5 and clamps the last extent to the request. */
export function clampExtents(
  extents: readonly NbdExtent[],
  lengthBytes: number,
  reqOne: boolean,
): NbdExtent[] {
  if (reqOne && extents.length !== 1)
    throw protocolError('REQ_ONE answered with several extents', 'extent count');
  const out: NbdExtent[] = [];
  let covered = 0;
  for (const extent of extents) {
    if (covered >= lengthBytes)
      throw protocolError('extents continue past the request', 'extent length');
    const clamped = Math.min(extent.lengthBytes, lengthBytes - covered);
    out.push(
      clamped === extent.lengthBytes ? extent : { lengthBytes: clamped, flags: extent.flags },
    );
    covered += clamped;
  }
  return out;
}

/**
 * A BLOCK_STATUS answer by context name: unknown context ids are ignored (§11.5), each list is
 * checked and clamped, and every negotiated context must be present.
 */
export function extentsByContext(
  answer: ReadonlyMap<number, readonly NbdExtent[]>,
  contextNames: ReadonlyMap<number, string>,
  negotiated: Iterable<string>,
  lengthBytes: number,
  reqOne: boolean,
): Map<string, readonly NbdExtent[]> {
  const result = new Map<string, readonly NbdExtent[]>();
  for (const [id, extents] of answer) {
    const name = contextNames.get(id);
    if (name !== undefined) result.set(name, clampExtents(extents, lengthBytes, reqOne));
  }
  for (const name of negotiated) {
    if (!result.has(name))
      throw new NbdError('NBD_EIO', `block status reply lacks context ${name}`, {
        retryable: true,
        details: { context: name },
      });
  }
  return result;
}

/** The FUA flag for a write when asked, if the export advertises it (else NBD_NOT_SUPPORTED). */
export function fuaFlag(info: NbdExportInfo, fua: boolean | undefined): number {
  if (fua !== true) return 0;
  requireFlag(info, NBD_FLAG_SEND_FUA, 'FUA');
  return NBD_CMD_FLAG_FUA;
}

export function requireFlag(info: NbdExportInfo, flag: number, what: string): void {
  if ((info.transmissionFlags & flag) === 0)
    throw new NbdError('NBD_NOT_SUPPORTED', `the export does not advertise ${what}`, {
      details: { feature: what },
    });
}
