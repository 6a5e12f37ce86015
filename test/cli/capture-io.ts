// The CLI's io for tests: stdout and stderr collected as text (stderr may claim to be a TTY, so
// progress lines are drawn), no environment.
import { Writable } from 'node:stream';
import { runCli } from '../../src/cli/run-cli.ts';

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

/**
 * Runs the CLI as a user would, with `--data-dir dataDir` appended; returns the exit code and the
 * captured output (the exit code the CLI sets on the process is reset for the test runner).
 */
export function cliInDataDir(dataDir: string) {
  return async (...args: string[]): Promise<{ code: number; out: string; err: string }> => {
    const c = captureIo();
    const code = await runCli([...args, '--data-dir', dataDir], c.io);
    process.exitCode = 0;
    return { code, out: c.out(), err: c.err() };
  };
}
