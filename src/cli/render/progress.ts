/**
 * Live progress of a run on a terminal: one status line per disk being read (phase, bytes,
 * rate), redrawn in place on a TTY; on a non-TTY only phase changes and warnings are printed.
 */
import { formatBytes, formatRate, type EventSink } from '../../core/index.ts';
import type { JobEvent } from '../../jobs/index.ts';

export function progressRenderer(
  stream: NodeJS.WritableStream & { isTTY?: boolean },
): EventSink<JobEvent> {
  const tty = stream.isTTY === true;
  let lastLine = '';
  const clear = (): void => {
    if (tty && lastLine !== '') stream.write('\r\x1b[2K');
    lastLine = '';
  };
  return {
    emit(event) {
      switch (event.type) {
        case 'disk-progress': {
          if (!tty) return;
          const percent =
            event.blocksTotal === 0
              ? 100
              : Math.floor((100 * event.blocksRead) / event.blocksTotal);
          lastLine = `  ${event.machineId}/${event.diskId}: ${percent}% ${formatBytes(event.bytesRead)} at ${formatRate(event.bytesRead, event.elapsedMs)}`;
          stream.write(`\r\x1b[2K${lastLine}`);
          return;
        }
        case 'machine-phase':
          if (event.phase === 'done') return;
          clear();
          stream.write(`${event.machineId}: ${event.phase}\n`);
          return;
        case 'warning':
          clear();
          stream.write(
            `warning: ${event.machineId === undefined ? '' : `${event.machineId}: `}${event.message}\n`,
          );
          return;
        case 'machine-finished':
          clear();
          stream.write(`${event.machineId}: ${event.status}\n`);
          return;
        default:
          return;
      }
    },
  };
}
