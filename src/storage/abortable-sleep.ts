/** Sleeping on a Clock that an abort signal cuts short, whatever the clock does with signals. */
import { CoreError, throwIfAborted, type Clock } from '../core/index.ts';

export async function abortableSleep(
  clock: Clock,
  delayMs: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  throwIfAborted(signal);
  if (delayMs <= 0) return;
  if (signal === undefined) {
    await clock.sleep(delayMs);
    return;
  }
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () =>
      reject(new CoreError('CANCELLED', 'operation cancelled', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([clock.sleep(delayMs, signal), aborted]);
  } catch (error) {
    throwIfAborted(signal);
    throw error;
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
