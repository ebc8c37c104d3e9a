import { isRetryableStatus } from '../../machines/retry.js';

/**
 * The typed error of one failed Graph request, and the parsers for what Graph
 * sends back with it: the error body and `Retry-After`.
 */

/** Stable codes: match on these, never on the message. */
export type GraphErrorCode = 'GRAPH_HTTP' | 'GRAPH_NETWORK' | 'GRAPH_TIMEOUT' | 'GRAPH_TOKEN';

/** How much of a non-JSON body (a proxy's HTML page) is kept as the message. */
const MAX_TEXT_MESSAGE = 200;

/** What Graph's error body says: `{"error": {"code", "message", "innerError": {…}}}`. */
export interface GraphErrorBody {
  readonly code: string | null;
  readonly message: string | null;
  readonly requestId: string | null;
  readonly clientRequestId: string | null;
  readonly date: string | null;
}

export interface GraphRequestErrorFacts {
  readonly code: GraphErrorCode;
  readonly status: number | null;
  readonly graphCode?: string | null;
  readonly graphMessage?: string | null;
  readonly retryAfterMs?: number | undefined;
  readonly requestId?: string | undefined;
  readonly clientRequestId: string;
  /** With no response: whether the request may have reached Graph (it was written to the socket). */
  readonly maybeDelivered?: boolean;
  readonly cause?: unknown;
}

/**
 * One Graph request that did not succeed: an HTTP error status, a network
 * failure or a time-out. `retryable` is a hint for callers other than the
 * call machine, which classifies outcomes itself.
 *
 * @example
 * const error = GraphRequestError.fromResponse({
 *   status: 429,
 *   headers: { 'retry-after': '2' },
 *   body: '{"error":{"code":"TooManyRequests","message":"Slow down"}}',
 *   clientRequestId: randomUUID(),
 * });
 * error.retryAfterMs; // 2000
 * error.graphCode;    // 'TooManyRequests'
 */
export class GraphRequestError extends Error {
  override readonly name = 'GraphRequestError';
  readonly code: GraphErrorCode;
  readonly status: number | null;
  readonly graphCode: string | null;
  readonly graphMessage: string | null;
  readonly retryAfterMs?: number | undefined;
  readonly retryable: boolean;
  readonly requestId?: string | undefined;
  readonly clientRequestId: string;
  readonly maybeDelivered: boolean;

  constructor(message: string, facts: GraphRequestErrorFacts) {
    super(message, { cause: facts.cause });
    this.code = facts.code;
    this.status = facts.status;
    this.graphCode = facts.graphCode ?? null;
    this.graphMessage = facts.graphMessage ?? null;
    this.retryAfterMs = facts.retryAfterMs;
    this.requestId = facts.requestId;
    this.clientRequestId = facts.clientRequestId;
    this.maybeDelivered = facts.maybeDelivered ?? false;
    // The call machine's own policy: no response, throttling and transient 5xx.
    this.retryable = isRetryableStatus(facts.status);
  }

  /** The error for an HTTP response outside 2xx; `now` resolves a date-form `Retry-After`. */
  static fromResponse(response: {
    status: number;
    headers: Readonly<Record<string, string | string[] | undefined>>;
    body: string;
    clientRequestId: string;
    now?: number;
  }): GraphRequestError {
    const parsed = parseGraphErrorBody(response.body);
    const requestId = firstHeader(response.headers['request-id']) ?? parsed.requestId ?? undefined;
    const summary = [response.status, parsed.code, parsed.message].filter(Boolean).join(' ');
    return new GraphRequestError(`Graph answered ${summary}`, {
      code: 'GRAPH_HTTP',
      status: response.status,
      graphCode: parsed.code,
      graphMessage: parsed.message,
      retryAfterMs: parseRetryAfter(response.headers['retry-after'], response.now ?? Date.now()),
      requestId,
      clientRequestId: response.clientRequestId,
    });
  }
}

/**
 * Read Graph's error body. Anything else (empty, HTML from a gateway,
 * truncated JSON) yields `code: null` and, if there is text, its start as the message.
 *
 * @example
 * parseGraphErrorBody('{"error":{"code":"8522","message":"Call not found."}}').code // '8522'
 * parseGraphErrorBody('<html>Bad Gateway</html>').message                         // '<html>Bad Gateway</html>'
 */
export function parseGraphErrorBody(body: string): GraphErrorBody {
  const empty = { code: null, message: null, requestId: null, clientRequestId: null, date: null };
  const text = body.trim();
  if (text === '') return empty;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ...empty, message: text.slice(0, MAX_TEXT_MESSAGE) };
  }
  const error = field(value, 'error');
  // Graph spells the inner object both `innerError` and `innererror`.
  const inner = field(error, 'innerError') ?? field(error, 'innererror');
  return {
    code: stringOrNull(field(error, 'code')),
    message: stringOrNull(field(error, 'message')),
    requestId: stringOrNull(field(inner, 'request-id')),
    clientRequestId: stringOrNull(field(inner, 'client-request-id')),
    date: stringOrNull(field(inner, 'date')),
  };
}

/**
 * `Retry-After` in ms: delay-seconds or an HTTP date (RFC 9110 §10.2.3),
 * never negative; `undefined` when absent or unreadable.
 *
 * @example
 * parseRetryAfter('3', Date.now())                                    // 3000
 * parseRetryAfter('Fri, 27 Nov 2026 09:00:05 GMT', Date.parse('2026-11-27T09:00:00Z')) // 5000
 */
export function parseRetryAfter(
  value: string | readonly string[] | undefined,
  now: number,
): number | undefined {
  const text = firstHeader(value)?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  // Every HTTP-date form names its month; Date.parse alone would take "-1" as a year.
  if (!/[a-z]{3}/i.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function firstHeader(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0];
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null
    ? (value as Record<string, unknown>)[key]
    : undefined;
}

function stringOrNull(value: unknown): string | null {
  if (typeof value === 'string') return value;
  // Calling error codes are numeric strings; be lenient if one arrives as a number.
  return typeof value === 'number' ? String(value) : null;
}
