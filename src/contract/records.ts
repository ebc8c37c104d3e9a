import { z } from 'zod';
import { STATE_NAMES } from '../../machines/states.js';
import { REJECT_REASONS } from './events.js';

const StateName = z.enum(STATE_NAMES);

/** One state change (or refused command) of one call, on `call.lifecycle.<callId>`. */
export const LifecycleRecord = z.object({
  callId: z.string(),
  state: StateName,
  previous: StateName.nullable(),
  /** The service's time of the transition (the simulated time in a replay), ISO-8601. */
  at: z.iso.datetime({ offset: true }),
  reason: z.enum(REJECT_REASONS).optional(),
  attempts: z.number().int().nonnegative().optional(),
  error: z.string().optional(),
  refused: z.object({ type: z.string(), why: z.string() }).optional(),
});
export type LifecycleRecord = z.infer<typeof LifecycleRecord>;

/** One message that could not be used, on `call.invalid`. */
export const InvalidRecord = z.object({
  subject: z.string(),
  /** Names the field and the rule it broke. */
  error: z.string(),
  /** The original message text, or base64 when it is not UTF-8; cut to 64 KiB. */
  payload: z.string(),
  at: z.iso.datetime({ offset: true }),
  /** Set when `payload` was cut. */
  truncated: z.literal(true).optional(),
});
export type InvalidRecord = z.infer<typeof InvalidRecord>;

/**
 * What the service knows of a record beyond the record itself: given to
 * the live page and the metrics with each one.
 */
export interface RecordFacts {
  /** The end of the call's answer window (epoch ms), when known. */
  readonly deadline: number | undefined;
  /** With a `rejected` record: the reject latency (ms). */
  readonly rejectLatencyMs: number | undefined;
}
