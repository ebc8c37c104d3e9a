import { randomUUID } from 'node:crypto';
import { Pool } from 'undici';
import type { RejectRequest } from '../../machines/types.js';
import type { CallControl } from '../runtime/ports.js';
import { GraphRequestError } from './errors.js';
import { exchange } from './exchange.js';
import { noAnswerError, type Outcome, outcomeOf, tokenError } from './outcome.js';
import type { TokenSource } from './tokens.js';

/** The slice of a pino logger the Graph client uses. */
export interface GraphLog {
  child(bindings: Record<string, unknown>): GraphLog;
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
}

export interface GraphClientOptions {
  /** Graph root, e.g. `https://graph.microsoft.com`, or a loopback emulator; may carry a path prefix. */
  readonly baseUrl: string;
  readonly apiVersion: 'v1.0' | 'beta';
  readonly tokens: TokenSource;
  /** Keep-alive connections to Graph. Default 64. */
  readonly connections?: number;
  readonly log?: GraphLog;
  /** Epoch ms, for the deadline. Default `Date.now`. */
  readonly now?: () => number;
  /**
   * Whether this instance may act on the call now (it owns it): asked when
   * the request is about to be written. A request it refuses is never
   * written, and counts as not delivered (retried while the window is open).
   */
  readonly mayAct?: (callId: string) => boolean;
}

/** Graph's call control over HTTP; `close()` ends its connections. */
export interface GraphClient extends CallControl {
  close(): Promise<void>;
}

const NOT_STARTED: Outcome = {
  status: null,
  maybeDelivered: false,
  message: 'answer window closed before the request could start',
};
const NO_LOG: GraphLog = { child: () => NO_LOG, debug: () => {}, info: () => {} };

/**
 * The `CallControl` port on Graph: `POST …/communications/calls/{id}/reject`
 * on one keep-alive undici `Pool`. Every HTTP answer and network failure is
 * reported as facts (status, Graph code and message, `Retry-After`) for the
 * call machine to classify; the only rejection is the caller's own abort,
 * with `signal.reason`. A request never starts at or after
 * `request.deadline`, and is cut off when the deadline passes:
 * `maybeDelivered` then says whether it had been written to the socket.
 *
 * @example
 * const graph = createGraphClient({
 *   baseUrl: 'https://graph.microsoft.com',
 *   apiVersion: 'v1.0',
 *   tokens: staticToken(process.env.GRAPH_TOKEN ?? ''),
 *   log,
 * });
 * const outcome = await graph.reject(request, signal); // { status: 202, maybeDelivered: false }
 * await graph.close();
 */
export function createGraphClient(options: GraphClientOptions): GraphClient {
  const base = new URL(options.baseUrl);
  const prefix = `${base.pathname.replace(/\/+$/, '')}/${options.apiVersion}/communications/calls/`;
  const now = options.now ?? Date.now;
  const mayAct = options.mayAct ?? (() => true);
  const rootLog = options.log ?? NO_LOG;
  const pool = new Pool(base.origin, { connections: options.connections ?? 64 });

  async function reject(request: RejectRequest, signal: AbortSignal): Promise<Outcome> {
    signal.throwIfAborted();
    // The call id goes into each line's fields: a child logger per request
    // costs more than the request's own bookkeeping.
    const log = rootLog;
    const clientRequestId = randomUUID();
    const fields = { callId: request.callId, attempt: request.attempt, clientRequestId };
    if (now() >= request.deadline) {
      log.debug(fields, 'reject not started: the answer window has closed');
      return NOT_STARTED;
    }
    const started = performance.now();
    const durationMs = () => Math.round((performance.now() - started) * 10) / 10;

    let token: string;
    try {
      token = await options.tokens.getToken(signal);
    } catch (cause) {
      if (signal.aborted) throw signal.reason;
      const error = tokenError(cause, clientRequestId);
      log.info({ ...fields, err: error.message }, 'reject not sent');
      return outcomeOf(error);
    }
    // Getting a token may have taken the rest of the window.
    const timeoutMs = request.deadline - now();
    if (timeoutMs <= 0) return NOT_STARTED;

    const body = JSON.stringify({
      reason: request.reason,
      ...(request.callbackUri !== null && { callbackUri: request.callbackUri }),
    });
    const ending = await exchange(
      pool,
      {
        method: 'POST',
        path: `${prefix}${encodeURIComponent(request.callId)}/reject`,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          'client-request-id': clientRequestId,
        },
        body,
      },
      timeoutMs,
      signal,
      // Checked again when the request is written: never at or after the deadline.
      { at: request.deadline, now, allowed: () => mayAct(request.callId) },
    );

    if (ending.kind === 'aborted') {
      log.debug({ ...fields, durationMs: durationMs() }, 'reject aborted by the caller');
      throw signal.reason;
    }
    if (ending.kind !== 'response') {
      const error = noAnswerError(ending, clientRequestId);
      const { maybeDelivered } = error;
      log.info(
        { ...fields, maybeDelivered, durationMs: durationMs(), err: error.message },
        'reject got no answer',
      );
      return outcomeOf(error);
    }
    const correlation = {
      ...fields,
      requestId: header(ending.headers['request-id']),
      scenarioId: header(ending.headers['scenario-id']),
      status: ending.status,
      durationMs: durationMs(),
    };
    if (ending.status >= 200 && ending.status < 300) {
      log.debug(correlation, 'reject accepted');
      return { status: ending.status, maybeDelivered: false };
    }
    if (ending.status === 401) options.tokens.invalidate?.(token);
    const error = GraphRequestError.fromResponse({ ...ending, clientRequestId, now: now() });
    const { graphCode: code, retryAfterMs } = error;
    log.info({ ...correlation, code, retryAfterMs }, 'reject refused');
    return outcomeOf(error);
  }

  return { reject, close: () => pool.close() };
}

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
