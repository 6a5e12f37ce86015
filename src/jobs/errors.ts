/** Errors of the jobs layer (job definitions, runs). */
import { VmdeltaError, type ErrorCatalogue, type VmdeltaErrorOptions } from '../core/index.ts';

export const jobErrors = {
  JOB_INVALID: 'A job definition is invalid (the message names the field).',
  JOB_NOT_FOUND: 'No job, schedule or run has this id.',
  JOB_ALREADY_RUNNING: 'A run of this job is still going; runs of one job never overlap.',
  JOB_NO_REMOTE_LEFT: 'Every remote of the run failed; nothing was backed up.',
  JOB_TIMEOUT: 'The run exceeded the job timeout and was stopped.',
} as const satisfies ErrorCatalogue;

export type JobErrorCode = keyof typeof jobErrors;

export class JobError extends VmdeltaError {
  declare readonly code: JobErrorCode;
  constructor(code: JobErrorCode, message: string, options?: VmdeltaErrorOptions) {
    super(code, message, options);
  }
}
