import { z } from 'zod';
import { canonicalCallId } from './call-id.js';
import { describeIssues } from './errors.js';
import { type Parsed, parseJson } from './json.js';
import { boundedValue, got, truncated } from './limits.js';

/**
 * The wire contract of `call.events.<callId>`: one JSON event envelope per
 * message. Parsing canonicalises the call id and turns `at` into epoch ms.
 */

export const REJECT_REASONS = ['none', 'busy', 'forbidden'] as const;
export const EVENT_TYPES = [
  'call.incoming',
  'call.reject',
  'call.answered',
  'call.terminated',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A call id in any of Graph's spellings, canonicalised. */
/** zod's message for a missing or mistyped field: "is required" or the rule. */
export function fieldError(rule: string) {
  return (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : rule);
}

export const CallIdField = z
  .string({ error: fieldError('must be a string') })
  .transform((raw, ctx) => {
    const result = canonicalCallId(raw);
    if (!result.ok) {
      ctx.addIssue({ code: 'custom', message: result.rule });
      return z.NEVER;
    }
    return result.callId;
  });

/** ISO-8601 with an offset (`Z` or `±hh:mm`), as epoch ms. */
export const AtField = z
  .string({ error: fieldError('must be an ISO-8601 date-time string with an offset') })
  .pipe(
    z.iso.datetime({
      offset: true,
      error: 'must be an ISO-8601 date-time with an offset, e.g. 2026-11-27T09:00:00Z',
    }),
  )
  .transform((text) => Date.parse(text));

export const RejectReasonField = z
  .string({ error: fieldError('must be one of none, busy, forbidden') })
  .transform((text) => text.toLowerCase())
  .pipe(z.enum(REJECT_REASONS, { error: 'must be one of none, busy, forbidden' }));

export const HttpsUrlField = z.url({
  protocol: /^https$/,
  error: 'must be an absolute https: URL',
});

/** Graph's resultInfo codes are documented as integers but appear as strings. */
const ResultCodeField = z
  .union([z.string(), z.number()], { error: 'must be a string or a number' })
  .transform((code) => truncated(String(code)));

/** Free text from Graph or a bot: kept, cut to 1 KiB. */
const TextField = z.string({ error: 'must be a string' }).transform((text) => truncated(text));

/**
 * A Graph object passed through (who calls whom): kept, bounded to 1 KiB of
 * JSON; a larger one becomes its JSON text, cut.
 */
const PassThrough = z
  .record(z.string(), z.unknown(), { error: 'must be an object' })
  .transform((value) => boundedValue(value) as Record<string, unknown> | string);

const envelope = { callId: CallIdField, at: AtField };

/** Fields the contract does not name, passed through as Graph sent them: each bounded. */
function boundExtras<T extends Record<string, unknown>>(value: T): T {
  const bounded: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    bounded[key] = KNOWN_INCOMING.has(key) ? field : boundedValue(field);
  }
  return bounded as T;
}

/** The fields of Graph's call resource that `call.incoming` names and passes through. */
export const INCOMING_FIELDS = [
  'tenantId',
  'source',
  'targets',
  'direction',
  'chatInfo',
  'meetingInfo',
] as const;

const KNOWN_INCOMING = new Set<string>(['type', 'callId', 'at', ...INCOMING_FIELDS]);

export const CallIncoming = z
  .looseObject({
    type: z.literal('call.incoming'),
    ...envelope,
    tenantId: TextField.optional(),
    source: PassThrough.optional(),
    targets: z
      .array(z.unknown(), { error: 'must be an array' })
      .transform((value) => boundedValue(value) as unknown[] | string)
      .optional(),
    direction: TextField.optional(),
    chatInfo: PassThrough.optional(),
    meetingInfo: PassThrough.optional(),
  })
  .transform(boundExtras);
export type CallIncoming = z.infer<typeof CallIncoming>;

export const CallReject = z.object({
  type: z.literal('call.reject'),
  ...envelope,
  reason: RejectReasonField,
  callbackUri: HttpsUrlField.optional(),
});
export type CallReject = z.infer<typeof CallReject>;

export const CallAnswered = z.object({ type: z.literal('call.answered'), ...envelope });
export type CallAnswered = z.infer<typeof CallAnswered>;

export const CallTerminated = z.object({
  type: z.literal('call.terminated'),
  ...envelope,
  code: ResultCodeField.optional(),
  subcode: ResultCodeField.optional(),
  message: TextField.optional(),
});
export type CallTerminated = z.infer<typeof CallTerminated>;

/** A parsed, canonical event envelope. */
export type CallEnvelope = CallIncoming | CallReject | CallAnswered | CallTerminated;

const SCHEMAS = {
  'call.incoming': CallIncoming,
  'call.reject': CallReject,
  'call.answered': CallAnswered,
  'call.terminated': CallTerminated,
} as const;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isEventType(value: unknown): value is EventType {
  return typeof value === 'string' && (EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * Validate one decoded event envelope.
 *
 * @example
 * parseEnvelope({ type: 'call.reject', callId: 'C1', at: '2026-11-27T09:00:00Z', reason: 'Busy' })
 * // { ok: true, value: { type: 'call.reject', callId: 'c1', at: 1795770000000, reason: 'busy' } }
 */
export function parseEnvelope(value: unknown): Parsed<CallEnvelope> {
  if (!isRecord(value)) {
    return { ok: false, error: '(message): must be a JSON object' };
  }
  const type = value.type;
  if (!isEventType(type)) {
    return {
      ok: false,
      error: `type: must be one of ${EVENT_TYPES.join(', ')}${got(type ?? null)}`,
    };
  }
  const result = SCHEMAS[type].safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: describeIssues(result.error) };
}

/** Decode and validate one message body (UTF-8 JSON text). */
export function parseEnvelopeText(text: string): Parsed<CallEnvelope> {
  const json = parseJson(text);
  return json.ok ? parseEnvelope(json.value) : json;
}
