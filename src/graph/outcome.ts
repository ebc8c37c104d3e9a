import type { RejectOutcome } from '../../machines/types.js';
import { GraphRequestError } from './errors.js';
import type { NoAnswer } from './exchange.js';

/** What `CallControl.reject` resolves with: the facts, without the host's time. */
export type Outcome = Omit<RejectOutcome, 'at'>;

/**
 * The facts of a failed request, as the call machine reads them.
 *
 * @example
 * outcomeOf(error) // { status: 429, maybeDelivered: false, code: 'TooManyRequests', retryAfterMs: 2000, … }
 */
export function outcomeOf(error: GraphRequestError): Outcome {
  return {
    status: error.status,
    maybeDelivered: error.status === null && error.maybeDelivered,
    ...(error.graphCode !== null && { code: error.graphCode }),
    ...(error.status === null
      ? { message: error.message }
      : error.graphMessage !== null && { message: error.graphMessage }),
    ...(error.retryAfterMs !== undefined && { retryAfterMs: error.retryAfterMs }),
  };
}

/**
 * The error for an exchange that got no answer: a time-out or a network failure.
 *
 * @example
 * noAnswerError({ kind: 'timeout', written: true }, id).message // 'timeout'
 */
export function noAnswerError(ending: NoAnswer, clientRequestId: string): GraphRequestError {
  if (ending.kind === 'timeout') {
    return new GraphRequestError(
      ending.written ? 'timeout' : 'timeout before the request was sent',
      { code: 'GRAPH_TIMEOUT', status: null, clientRequestId, maybeDelivered: ending.written },
    );
  }
  return new GraphRequestError(networkMessage(ending.error), {
    code: 'GRAPH_NETWORK',
    status: null,
    clientRequestId,
    maybeDelivered: ending.written,
    cause: ending.error,
  });
}

/**
 * The error for a request that never went out because there was no token.
 *
 * @example
 * tokenError(new Error('invalid_client'), id).message // 'no Graph token: invalid_client'
 */
export function tokenError(cause: unknown, clientRequestId: string): GraphRequestError {
  const message = cause instanceof Error ? cause.message : String(cause);
  return new GraphRequestError(`no Graph token: ${message}`, {
    code: 'GRAPH_TOKEN',
    status: null,
    clientRequestId,
    cause,
  });
}

/** "ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:9" — undici's code first, it is stable. */
function networkMessage(error: Error | undefined): string {
  if (!error) return 'network error';
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? `${code}: ${error.message}` : error.message;
}
