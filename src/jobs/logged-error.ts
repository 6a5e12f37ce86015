/** An error as the run log keeps it: its stable code and a safe message. */
import { describeError, isVmdeltaError } from '../core/index.ts';
import type { LoggedError } from './run-log.ts';

export function toLoggedError(error: unknown): LoggedError {
  return { code: isVmdeltaError(error) ? error.code : 'INTERNAL', message: describeError(error) };
}
