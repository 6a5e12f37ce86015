/**
 * Structured logging seam. The core never prints: it calls a Logger, and the edge (CLI, server)
 * decides where lines go. Secrets must never be passed in `fields`.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  log(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
  child(fields: Readonly<Record<string, unknown>>): Logger;
}

export const silentLogger: Logger = {
  log: () => undefined,
  child: () => silentLogger,
};

/** A logger that keeps records in memory (tests, run logs). */
export class MemoryLogger implements Logger {
  readonly records: { level: LogLevel; message: string; fields: Record<string, unknown> }[];
  readonly #base: Readonly<Record<string, unknown>>;

  constructor(base: Readonly<Record<string, unknown>> = {}, records: MemoryLogger['records'] = []) {
    this.#base = base;
    this.records = records;
  }

  log(level: LogLevel, message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.records.push({ level, message, fields: { ...this.#base, ...fields } });
  }

  child(fields: Readonly<Record<string, unknown>>): Logger {
    return new MemoryLogger({ ...this.#base, ...fields }, this.records);
  }
}
