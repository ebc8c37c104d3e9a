import type { StateName } from './states.js';

/**
 * Domain types of the call statechart. Plain data, no behaviour: the machine,
 * the host and the wire contract all speak in these terms.
 */

/** Why the bot turns the call down; sent to Graph in lower case. */
export type RejectReason = 'none' | 'busy' | 'forbidden';

/** The contract's state names (`machines/states.ts`). `rejecting` may carry a sub-state. */
export type CallStateName = StateName;

/** What the machine is created from when a call's `call.incoming` arrives. */
export interface CallInput {
  readonly callId: string;
  /** When the call came in (epoch ms), from the event's `at`. */
  readonly at: number;
  /** The host's time when the event was received (epoch ms). */
  readonly now: number;
  /** The answer window in ms. */
  readonly windowMs: number;
}

/** One reject request as the machine asks the host to send it. */
export interface RejectRequest {
  readonly callId: string;
  readonly reason: RejectReason;
  readonly callbackUri: string | null;
  /** 1 for the first request, 2 for the first retry, … */
  readonly attempt: number;
  /** Absolute end of the answer window (epoch ms): no request may start at or after it. */
  readonly deadline: number;
  /** Time left in the window when the attempt started (ms). */
  readonly remainingMs: number;
}

/**
 * What one reject request came back with, as the host saw it. The machine
 * classifies it; the host only reports facts.
 */
export interface RejectOutcome {
  /** HTTP status, or `null` when no response came (network error or time-out). */
  readonly status: number | null;
  /** With `status: null`: whether the request may have reached Graph (a time-out after sending). */
  readonly maybeDelivered: boolean;
  /** Graph's error code (`error.code`), e.g. `8522`. */
  readonly code?: string | undefined;
  /** Graph's error message, or the network error. */
  readonly message?: string | undefined;
  /** `Retry-After`, in ms. */
  readonly retryAfterMs?: number | undefined;
  /** The host's time when the outcome was known (epoch ms). */
  readonly at: number;
}

/** The last error Graph (or the network) gave for this call. */
export interface GraphErrorInfo {
  readonly status: number | null;
  readonly code: string | null;
  readonly message: string;
}

/** Graph's resultInfo, from `call.terminated`. */
export interface TerminationInfo {
  readonly code?: string | undefined;
  readonly subcode?: string | undefined;
  readonly message?: string | undefined;
}

/** Events the machine reacts to. Every event carries the host's `now` (epoch ms). */
export type CallEvent =
  | {
      readonly type: 'call.reject';
      readonly now: number;
      readonly reason: RejectReason;
      readonly callbackUri?: string | undefined;
      /**
       * The message carrying this reject was delivered before: an earlier run
       * may have sent its request, so the first attempt's outcome is unknown
       * (a 404 to it means that request went through).
       */
      readonly redelivered?: boolean | undefined;
    }
  | { readonly type: 'call.answered'; readonly now: number }
  | ({ readonly type: 'call.terminated'; readonly now: number } & TerminationInfo)
  /** The host's scheduler: the answer window has closed. */
  | { readonly type: 'window.closed'; readonly now: number }
  /** The host's scheduler: the back-off before the next attempt has elapsed. */
  | { readonly type: 'retry.due'; readonly now: number }
  /** The host restored this call after a crash: an attempt in flight then has an unknown outcome. */
  | { readonly type: 'call.recovered'; readonly now: number };

export type CallEventType = CallEvent['type'];

export interface CallContext {
  readonly callId: string;
  /** Absolute end of the answer window (epoch ms). */
  readonly deadline: number;
  readonly reason: RejectReason | null;
  readonly callbackUri: string | null;
  /** Reject requests sent so far. */
  readonly attempts: number;
  /** An earlier attempt may have reached Graph without us learning its result. */
  readonly outcomeUnknown: boolean;
  readonly lastError: GraphErrorInfo | null;
  /** When the next attempt is due (epoch ms), while waiting to retry. */
  readonly retryAt: number | null;
  /** Graph said the call ended while a request was in flight. */
  readonly terminated: TerminationInfo | null;
  /** Human-readable cause for `failed` and `ended`. */
  readonly error: string | null;
}
