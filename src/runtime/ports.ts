import type { RejectOutcome, RejectRequest } from '../../machines/types.js';

/**
 * Graph's call control, as the runtime needs it. An implementation reports
 * every HTTP outcome as data (it does not throw for 4xx/5xx or network
 * errors) and never starts a request at or after `request.deadline`.
 */
export interface CallControl {
  reject(request: RejectRequest, signal: AbortSignal): Promise<Omit<RejectOutcome, 'at'>>;
}

/** The slice of a pino logger the runtime uses. */
export interface RuntimeLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
