/**
 * The error base class of vmdelta. Every error the product throws on purpose is a VmdeltaError
 * (or a subclass) with a stable `code` from an error catalogue, a `retryable` flag decided by the
 * layer that knows, and optional structured `details`. Codes are documented in docs/errors.md,
 * generated from the catalogues (see scripts/errors-doc.ts) and checked by a test.
 */

/** A catalogue maps each stable error code of a layer to a one-line explanation for users. */
export type ErrorCatalogue = Readonly<Record<string, string>>;

export interface VmdeltaErrorOptions {
  readonly cause?: unknown;
  readonly retryable?: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
}

export class VmdeltaError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, options: VmdeltaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details ?? {};
  }
}

/** Errors of the core layer itself. */
export const coreErrors = {
  CANCELLED: 'The operation was cancelled (abort signal or shutdown).',
  TIMEOUT: 'The operation did not finish within its time limit.',
  INVALID_ARGUMENT: 'A value given by the caller is out of range or malformed.',
  INTERNAL: 'An invariant of vmdelta itself was broken (a bug): please report it.',
} as const satisfies ErrorCatalogue;

export type CoreErrorCode = keyof typeof coreErrors;

export class CoreError extends VmdeltaError {
  declare readonly code: CoreErrorCode;
  constructor(code: CoreErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}

export function isVmdeltaError(value: unknown): value is VmdeltaError {
  return value instanceof VmdeltaError;
}

/** Throws CANCELLED if the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new CoreError('CANCELLED', 'operation cancelled', { cause: signal.reason });
  }
}

/** A short, safe description of any thrown value, for logs. */
export function describeError(error: unknown): string {
  if (error instanceof VmdeltaError) return `${error.code}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}
