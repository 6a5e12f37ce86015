// The CLI's io for tests: stdout and stderr collected as text (stderr may claim to be a TTY, so
// progress lines are drawn), no environment.
import { Writable } from 'node:stream';

export function captureIo(tty = false) {
  let out = '';
  let err = '';
  const stream = (append: (s: string) => void) =>
    Object.assign(
      new Writable({
        write(chunk: Buffer, _e, cb) {
          append(chunk.toString());
          cb();
        },
      }),
      { isTTY: tty },
    );
  return {
    io: { stdout: stream((s) => (out += s)), stderr: stream((s) => (err += s)), env: {} },
    out: () => out,
    err: () => err,
  };
}
