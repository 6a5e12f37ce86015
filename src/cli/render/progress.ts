/**
 * Live progress on a terminal, one renderer for every long command: a status line with a bar,
 * percent, bytes, rate and ETA, redrawn in place on a TTY. Job runs draw one line per disk being
 * read (on a non-TTY only their phase changes and warnings are printed); copy, verify, restore,
 * export, prune and checksum draw the WorkProgress their use case reports, and nothing at all with
 * --json or when stderr is not a TTY.
 */
import {
  formatBytes,
  formatDurationMs,
  formatRate,
  type EventSink,
  type ProgressListener,
  type WorkProgress,
} from '../../core/index.ts';
import type { JobEvent } from '../../jobs/index.ts';
import type { CliIo } from '../io.ts';

type TerminalStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

const BAR_CELLS = 20;
const CLEAR_LINE = '\r\x1b[2K';

/** The share done, by bytes when the phase counts them, else by objects; undefined if unknown. */
function fractionDone(progress: WorkProgress): number | undefined {
  if (progress.totalBytes > 0) return Math.min(1, progress.doneBytes / progress.totalBytes);
  if (progress.totalObjects > 0) return Math.min(1, progress.doneObjects / progress.totalObjects);
  return undefined;
}

/**
 * "copy [########------------] 42% 1.2 GiB of 3 GiB, 120/300 objects, 85 MiB/s, ETA 12 s".
 * `elapsedMs`: time spent on the phase so far (rate and ETA need it).
 */
export function formatProgressLine(
  progress: WorkProgress,
  elapsedMs: number,
  unit = 'objects',
): string {
  const label = progress.item === undefined ? progress.phase : `${progress.phase} ${progress.item}`;
  const fraction = fractionDone(progress);
  const parts: string[] = [];
  if (progress.totalBytes > 0)
    parts.push(`${formatBytes(progress.doneBytes)} of ${formatBytes(progress.totalBytes)}`);
  else if (progress.doneBytes > 0) parts.push(formatBytes(progress.doneBytes));
  if (progress.totalObjects > 0)
    parts.push(`${progress.doneObjects}/${progress.totalObjects} ${unit}`);
  else if (progress.doneObjects > 0) parts.push(`${progress.doneObjects} ${unit}`);
  if (progress.doneBytes > 0) parts.push(formatRate(progress.doneBytes, elapsedMs));
  if (fraction !== undefined && fraction > 0 && fraction < 1 && elapsedMs >= 1000)
    parts.push(`ETA ${formatDurationMs((elapsedMs * (1 - fraction)) / fraction)}`);
  if (fraction === undefined) return `${label}: ${parts.length === 0 ? '…' : parts.join(', ')}`;
  const filled = Math.floor(fraction * BAR_CELLS);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR_CELLS - filled)}]`;
  return `${label} ${bar} ${Math.floor(fraction * 100)}% ${parts.join(', ')}`;
}

/** One status line redrawn in place; every write is a whole line, cut to the terminal width. */
export class ProgressLine {
  readonly #stream: TerminalStream;
  readonly #nowMs: () => number;
  #drawn = false;
  #phaseKey = '';
  #phaseStartMs = 0;

  constructor(stream: TerminalStream, nowMs: () => number = Date.now) {
    this.#stream = stream;
    this.#nowMs = nowMs;
  }

  /** Draws `text` in place of the current line. */
  draw(text: string): void {
    const columns = this.#stream.columns;
    const line = columns !== undefined && columns > 1 ? text.slice(0, columns - 1) : text;
    this.#stream.write(`${CLEAR_LINE}${line}`);
    this.#drawn = true;
  }

  /** Draws a use case's progress; rate and ETA are measured from the phase's first report. */
  readonly update: ProgressListener = (progress) => {
    const key = `${progress.phase}\0${progress.item ?? ''}`;
    const nowMs = this.#nowMs();
    if (key !== this.#phaseKey) {
      this.#phaseKey = key;
      this.#phaseStartMs = nowMs;
    }
    this.draw(formatProgressLine(progress, nowMs - this.#phaseStartMs));
  };

  /** Clears the line (before printing results, or a line of its own). */
  clear(): void {
    if (this.#drawn) this.#stream.write(CLEAR_LINE);
    this.#drawn = false;
  }
}

/**
 * Runs a command's use case with progress on stderr: `fn` gets `{ onProgress }` to spread into its
 * request when stderr is a TTY and --json is not given (else `{}`); the line is cleared afterwards,
 * so results and errors print on clean lines.
 */
export async function withCommandProgress<T>(
  io: CliIo,
  json: boolean | undefined,
  fn: (listener: { onProgress?: ProgressListener }) => Promise<T>,
): Promise<T> {
  if (json === true || io.stderr.isTTY !== true) return fn({});
  const line = new ProgressLine(io.stderr);
  try {
    return await fn({ onProgress: line.update });
  } finally {
    line.clear();
  }
}

/** A job run's events on `stream`: disk lines on a TTY; phases, warnings and results always. */
export function progressRenderer(stream: TerminalStream): EventSink<JobEvent> {
  const tty = stream.isTTY === true;
  const line = new ProgressLine(stream);
  return {
    emit(event) {
      switch (event.type) {
        case 'disk-progress': {
          if (!tty) return;
          line.draw(
            `  ${formatProgressLine(
              {
                phase: `${event.machineId}/${event.diskId}`,
                doneBytes: event.bytesRead,
                totalBytes: 0,
                doneObjects: event.blocksRead,
                totalObjects: event.blocksTotal,
              },
              event.elapsedMs,
              'blocks',
            )}`,
          );
          return;
        }
        case 'machine-phase':
          if (event.phase === 'done') return;
          line.clear();
          stream.write(`${event.machineId}: ${event.phase}\n`);
          return;
        case 'warning':
          line.clear();
          stream.write(
            `warning: ${event.machineId === undefined ? '' : `${event.machineId}: `}${event.message}\n`,
          );
          return;
        case 'machine-finished':
          line.clear();
          stream.write(`${event.machineId}: ${event.status}\n`);
          return;
        default:
          return;
      }
    },
  };
}
