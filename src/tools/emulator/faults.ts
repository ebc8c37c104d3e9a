import { z } from 'zod';
import { canonicalCallId } from '../../contract/call-id.js';
import { describeIssues } from '../../contract/errors.js';

const RetryAfterSeconds = z
  .number({ error: 'must be a whole number of seconds' })
  .int({ error: 'must be a whole number of seconds' })
  .nonnegative({ error: 'must be a whole number of seconds' })
  .optional();

/**
 * What the emulator does to one reject request instead of answering 202.
 * `slow` and `drop` still process the reject (it counts as accepted unless
 * `accept: false`); the other kinds refuse it.
 */
export const Fault = z.discriminatedUnion(
  'kind',
  [
    z.object({
      kind: z.literal('status'),
      status: z.literal([429, 500, 502, 503, 504], {
        error: 'must be 429, 500, 502, 503 or 504',
      }),
      retryAfterSeconds: RetryAfterSeconds,
    }),
    /** 404 `8522` "Call not found." */
    z.object({ kind: z.literal('notFound') }),
    /** 403 `7504` "Insufficient enterprise tenant permissions" */
    z.object({ kind: z.literal('forbidden') }),
    /** 401 `InvalidAuthenticationToken`: the bearer token expired or was revoked. */
    z.object({ kind: z.literal('unauthorized') }),
    /** Hold the answer `ms` milliseconds, or with `hold: true` until released. */
    z
      .object({
        kind: z.literal('slow'),
        ms: z.number({ error: 'must be a number of ms' }).int().positive().optional(),
        hold: z.literal(true, { error: 'must be true' }).optional(),
      })
      .refine((f) => (f.ms === undefined) !== (f.hold === undefined), {
        error: 'give exactly one of ms or hold: true',
        path: ['ms'],
      }),
    /** Read the request, then destroy the socket without answering. */
    z.object({
      kind: z.literal('drop'),
      accept: z.boolean({ error: 'must be a boolean' }).optional(),
    }),
  ],
  {
    error: (issue) =>
      issue.input === undefined
        ? 'is required'
        : 'must be one of status, notFound, forbidden, unauthorized, slow, drop',
  },
);
export type Fault = z.infer<typeof Fault>;
export type FaultKind = Fault['kind'];

/**
 * Where a fault applies: the next `times` requests for `callId` (a queue, one
 * fault per request), or a `rate` fraction of all requests.
 */
export const FaultRule = z
  .object({
    callId: z
      .string({ error: 'must be a string' })
      .min(1, { error: 'must not be empty' })
      .optional(),
    rate: z
      .number({ error: 'must be a number' })
      .gt(0, { error: 'must be > 0 and ≤ 1' })
      .max(1, { error: 'must be > 0 and ≤ 1' })
      .optional(),
    times: z
      .number({ error: 'must be a whole number ≥ 1' })
      .int({ error: 'must be a whole number ≥ 1' })
      .positive({ error: 'must be a whole number ≥ 1' })
      .optional(),
    fault: Fault,
  })
  .refine((rule) => (rule.callId === undefined) !== (rule.rate === undefined), {
    error: 'give exactly one of callId or rate',
    path: ['callId'],
  })
  .refine((rule) => rule.times === undefined || rule.callId !== undefined, {
    error: 'only with callId',
    path: ['times'],
  });
export type FaultRule = z.input<typeof FaultRule>;

/**
 * A fault rule, or the message naming each bad field.
 *
 * @example
 * parseFaultRule({ rate: 2, fault: { kind: 'drop' } }) // { ok: false, error: 'rate: must be > 0 and ≤ 1' }
 */
export function parseFaultRule(
  value: unknown,
): { ok: true; value: z.output<typeof FaultRule> } | { ok: false; error: string } {
  const result = FaultRule.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: describeIssues(result.error) };
}

/**
 * The key the emulator files a call under: Graph treats the spellings of one id alike.
 *
 * @example
 * callKey('2F1A1100726E4C1EB6F2A1B2C3D4E5F6') // '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6'
 */
export function callKey(callId: string): string {
  const result = canonicalCallId(callId);
  return result.ok ? result.callId : callId.toLowerCase();
}

export interface FaultBook {
  add(rule: z.output<typeof FaultRule>): void;
  /** The fault for the next request of this call, if any; consumes a queued one. */
  take(callId: string): Fault | null;
  clear(): void;
  /** Queued faults left, per call key. */
  queued(): Record<string, number>;
}

/**
 * Per-call queues first, then rate rules in the order they were added.
 *
 * @example
 * const book = createFaultBook(Math.random);
 * book.add({ callId: 'c1', fault: { kind: 'notFound' } });
 * book.take('c1'); // { kind: 'notFound' }
 * book.take('c1'); // null
 */
export function createFaultBook(random: () => number): FaultBook {
  const queues = new Map<string, Fault[]>();
  let rates: Array<{ rate: number; fault: Fault }> = [];
  return {
    add(rule) {
      if (rule.callId === undefined) {
        rates.push({ rate: rule.rate ?? 1, fault: rule.fault });
        return;
      }
      const key = callKey(rule.callId);
      const queue = queues.get(key) ?? [];
      for (let i = 0; i < (rule.times ?? 1); i++) queue.push(rule.fault);
      queues.set(key, queue);
    },
    take(callId) {
      const key = callKey(callId);
      const queue = queues.get(key);
      const queued = queue?.shift();
      if (queue?.length === 0) queues.delete(key);
      if (queued) return queued;
      return rates.find((r) => random() < r.rate)?.fault ?? null;
    },
    clear() {
      queues.clear();
      rates = [];
    },
    queued() {
      return Object.fromEntries([...queues].map(([key, queue]) => [key, queue.length]));
    },
  };
}
