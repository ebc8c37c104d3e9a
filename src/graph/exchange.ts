import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

/** Graph's error bodies are small; past this the rest is read and dropped. */
const MAX_BODY_BYTES = 64 * 1024;
/** setTimeout fires at once for anything longer (Node's TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** An exchange that ended without a (complete) answer. */
export interface NoAnswer {
  /** `timeout`: `timeoutMs` passed; `aborted`: `signal` fired; `failed`: the connection or socket failed. */
  readonly kind: 'timeout' | 'aborted' | 'failed';
  /** The request had been handed to a connected socket: it may have reached the server. */
  readonly written: boolean;
  readonly error?: Error;
}

/** A time after which the request must not be written at all, and the clock to read it by. */
export interface NotAfter {
  readonly at: number;
  readonly now: () => number;
  /** Asked too when the request is about to be written: no means it is never written. */
  readonly allowed?: () => boolean;
}

/** How one HTTP exchange ended. Never throws: every ending is data. */
export type Exchange =
  | {
      readonly kind: 'response';
      readonly status: number;
      readonly headers: IncomingHttpHeaders;
      readonly body: string;
    }
  | NoAnswer;

/**
 * One request on an undici dispatcher, bounded by `timeoutMs` and `signal`.
 *
 * It uses `dispatch` with its own handler rather than `request`, because the
 * handler's `onRequestStart` runs just before undici writes the request to a
 * connected socket: that is what tells "never sent" (connection refused, still
 * queued or connecting at the deadline) from "sent, outcome unknown", which
 * `request()` does not expose. It is also where `notAfter` is checked: the
 * clock is read when the request is about to be written, so a request that
 * waited in the pool (or behind a busy event loop) past its deadline is
 * never written, whether or not its timer has fired yet. The body is always
 * read to its end, so the connection goes back to the pool.
 *
 * @example
 * const ending = await exchange(pool, { path: '/x', method: 'POST', body: '{}' }, 500, signal);
 * if (ending.kind === 'timeout' && ending.written) console.log('may have arrived');
 */
export function exchange(
  dispatcher: Dispatcher,
  options: Dispatcher.DispatchOptions,
  timeoutMs: number,
  signal: AbortSignal,
  notAfter?: NotAfter,
): Promise<Exchange> {
  return new Promise((resolve) => {
    let controller: Dispatcher.DispatchController | null = null;
    let settled = false;
    let status: number | null = null;
    let headers: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    let size = 0;

    const response = (): Exchange => ({
      kind: 'response',
      status: status ?? 0,
      headers,
      body: Buffer.concat(chunks).toString('utf8'),
    });

    const settle = (ending: Exchange) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(ending);
    };

    const stop = (kind: 'timeout' | 'aborted', reason: Error) => {
      // Headers already came: the answer is known even if the body is late.
      settle(status !== null ? response() : { kind, written: controller !== null });
      controller?.abort(reason);
    };

    const onAbort = () => stop('aborted', toError(signal.reason));
    // A plain timer, cleared on settle: AbortSignal.timeout would keep one
    // timer per request alive for the whole answer window.
    const timer = setTimeout(
      () => stop('timeout', new Error(`no answer within ${timeoutMs} ms`)),
      Math.min(timeoutMs, MAX_TIMER_MS),
    );
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(started) {
        // Settled while queued or connecting: make sure it is never written.
        if (settled) return started.abort(new Error('abandoned before it was sent'));
        if (notAfter && notAfter.now() >= notAfter.at) {
          settle({ kind: 'timeout', written: false });
          return started.abort(new Error('its deadline passed before it could be written'));
        }
        if (notAfter?.allowed && !notAfter.allowed()) {
          const error = new Error('this instance no longer owns the call');
          settle({ kind: 'failed', written: false, error });
          return started.abort(error);
        }
        controller = started;
      },
      onResponseStart(_c, statusCode, responseHeaders) {
        if (statusCode < 200) return;
        status = statusCode;
        headers = responseHeaders;
      },
      onResponseData(_c, chunk) {
        if (size < MAX_BODY_BYTES) chunks.push(chunk);
        size += chunk.length;
      },
      onResponseEnd() {
        settle(response());
      },
      onResponseError(_c, error) {
        settle(
          status !== null ? response() : { kind: 'failed', written: controller !== null, error },
        );
      },
    };
    try {
      dispatcher.dispatch(options, handler);
    } catch (error) {
      settle({ kind: 'failed', written: false, error: toError(error) });
    }
  });
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
