/**
 * The one retry policy for reject requests: which outcomes may be retried,
 * how many requests a call may make, and the capped exponential back-off with
 * jitter that honours Retry-After. Pure: the jitter is derived from the call
 * id and the attempt, so a replay of the same log schedules the same retries.
 * The Graph client reads its `retryable` hint from here too.
 */

export const RETRY_POLICY = {
  /** First back-off (ms). */
  baseMs: 200,
  /** Largest back-off before jitter (ms). */
  capMs: 3_000,
  /** Requests per call, the first included. */
  maxAttempts: 8,
} as const;

/**
 * Statuses after which Graph may accept the same request later: throttling
 * and transient errors (learn.microsoft.com/graph/throttling). `null`: no response.
 */
export function isRetryableStatus(status: number | null): boolean {
  return (
    status === null ||
    status === 429 ||
    status === 500 ||
    status === 502 ||
    status === 503 ||
    status === 504
  );
}

/** A number in [0, 1) from the call id and attempt (FNV-1a). */
export function jitterFraction(callId: string, attempt: number): number {
  let hash = 0x811c9dc5 ^ attempt;
  for (let i = 0; i < callId.length; i++) {
    hash ^= callId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 0x1_0000_0000;
}

/**
 * The wait before attempt `attempt + 1`, after attempt `attempt` failed.
 * "Equal jitter": half the exponential step, plus a random half; never less
 * than Graph's Retry-After.
 *
 * @example
 * backoffDelay('c1', 1)          // between 100 and 200
 * backoffDelay('c1', 1, 2_000)   // 2000: Retry-After wins
 */
export function backoffDelay(callId: string, attempt: number, retryAfterMs?: number): number {
  const step = Math.min(RETRY_POLICY.capMs, RETRY_POLICY.baseMs * 2 ** (attempt - 1));
  const jittered = Math.round(step / 2 + (step / 2) * jitterFraction(callId, attempt));
  return Math.max(jittered, retryAfterMs ?? 0);
}
