/** Spec "Time Stamp": seconds since the VHD epoch, 2000-01-01T00:00:00Z (not Unix seconds). */
import { VHD_EPOCH_UNIX_SECONDS } from './constants.ts';

export function toVhdTimestamp(date: Date): number {
  const seconds = Math.floor(date.getTime() / 1000) - VHD_EPOCH_UNIX_SECONDS;
  return Math.min(0xffffffff, Math.max(0, seconds));
}

export function fromVhdTimestamp(vhdSeconds: number): Date {
  return new Date((vhdSeconds + VHD_EPOCH_UNIX_SECONDS) * 1000);
}
