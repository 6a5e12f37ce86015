/** CBT calls (xapi.md §7): enable/disable on live VDIs, and the changed blocks between snapshots. */
import { decodeCbtBitmap, type CbtBitmap } from './cbt-bitmap.ts';
import { XapiError } from './errors.ts';
import type { XapiSession } from './session.ts';

/** Idempotent; SR_OPERATION_NOT_SUPPORTED means this disk is stream-only. */
export async function enableCbt(session: XapiSession, vdiRef: string): Promise<void> {
  await session.call('VDI.enable_cbt', [vdiRef]);
}

export async function disableCbt(session: XapiSession, vdiRef: string): Promise<void> {
  await session.call('VDI.disable_cbt', [vdiRef]);
}

/**
 * The blocks changed between two snapshots of one disk (`fromVdiRef` older, may be
 * cbt_metadata; `toVdiRef` newer, not attached), decoded for a disk of `virtualSizeBytes`.
 */
export async function listChangedBlocks(
  session: XapiSession,
  fromVdiRef: string,
  toVdiRef: string,
  virtualSizeBytes: number,
): Promise<CbtBitmap> {
  const answer = await session.call('VDI.list_changed_blocks', [fromVdiRef, toVdiRef]);
  if (typeof answer !== 'string') {
    throw new XapiError(
      'XAPI_CBT_BITMAP_INVALID',
      'VDI.list_changed_blocks did not return a string',
    );
  }
  return decodeCbtBitmap(answer, virtualSizeBytes);
}
