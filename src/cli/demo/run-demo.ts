/**
 * The demo scenario. It grows with the product: each capability that lands adds its step, and
 * test/e2e runs the same scenario with assertions.
 */
import type { CliIo } from '../io.ts';

export interface DemoOptions {
  readonly keep: boolean;
}

export function runDemo(io: CliIo, _options: DemoOptions): Promise<void> {
  io.stdout.write('vmdelta demo: no capability has landed yet.\n');
  return Promise.resolve();
}
