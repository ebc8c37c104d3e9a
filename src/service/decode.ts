import { canonicalCallId } from '../contract/call-id.js';
import { type CallEnvelope, parseEnvelopeText } from '../contract/events.js';
import { translateNotificationsText } from '../contract/graph-notifications.js';
import { got, LIMITS, truncated } from '../contract/limits.js';
import type { InboundMessage } from './message-ack.js';

/** Something in a message that could not be used: why, and (for one notification of a batch) that notification. */
export interface Unusable {
  readonly error: string;
  /** The part of the message the error is about; the whole message when absent. */
  readonly part?: unknown;
}

/** What one message holds: the events to deliver, and why the rest could not be used. */
export interface Decoded {
  readonly events: CallEnvelope[];
  readonly invalid: Unusable[];
}

/** Where the decoder finds events and Graph's batches. */
export interface DecodeSubjects {
  /** Where Graph's notification batches arrive. */
  readonly notifications: string;
  /** Prefixes of event subjects, tried in order; what follows is the call id token. */
  readonly eventPrefixes: readonly string[];
  /**
   * Where events are kept by partition (`<prefix>.partition.<n>.<id>`), and
   * where they were published (`<prefix>.events.<id>`).
   */
  readonly partitioned?: { readonly kept: string; readonly published: string };
}

const DIGITS = /^\d+$/;

/**
 * The subject an event was published on: `<prefix>.events.<id>` for one
 * kept in a partition (`<prefix>.partition.<n>.<id>`).
 */
export function publishedSubject(subject: string, subjects: DecodeSubjects): string {
  const tail = partitionTail(subject, subjects.partitioned);
  return tail === undefined || subjects.partitioned === undefined
    ? subject
    : subjects.partitioned.published + tail;
}

/** What follows `<kept><n>.` in a subject kept in a partition; undefined for any other subject. */
function partitionTail(
  subject: string,
  partitioned: DecodeSubjects['partitioned'],
): string | undefined {
  if (partitioned === undefined || !subject.startsWith(partitioned.kept)) return undefined;
  const from = partitioned.kept.length;
  const dot = subject.indexOf('.', from);
  if (dot <= from || !DIGITS.test(subject.slice(from, dot))) return undefined;
  return subject.slice(dot + 1);
}

/**
 * The call id token of an event's subject, as published (`''` when it is no
 * event's), read without building the published subject for every event.
 */
function idToken(subject: string, subjects: DecodeSubjects): string {
  const { partitioned, eventPrefixes } = subjects;
  const tail = partitionTail(subject, partitioned);
  if (tail !== undefined && partitioned && eventPrefixes.includes(partitioned.published)) {
    return tail;
  }
  const published = tail !== undefined && partitioned ? partitioned.published + tail : subject;
  const prefix = eventPrefixes.find((p) => published.startsWith(p));
  return prefix === undefined ? '' : published.slice(prefix.length);
}

const DECODER = new TextDecoder('utf-8', { fatal: true });

/**
 * Decode one stream message: a Graph notification batch into its events
 * (its `at` is when the stream stored it), or one event envelope whose
 * subject token and `callId` must name the same call.
 */
export function decodeMessage(
  msg: Pick<InboundMessage, 'subject' | 'data' | 'info'>,
  subjects: DecodeSubjects,
): Decoded {
  const notifications = msg.subject === subjects.notifications;
  if (!notifications && msg.data.length > LIMITS.envelopeBytes) {
    return invalid(
      `(message): an event must be at most ${LIMITS.envelopeBytes} bytes (got ${msg.data.length})`,
    );
  }
  let text: string;
  try {
    text = DECODER.decode(msg.data);
  } catch {
    return invalid('(message): must be UTF-8 JSON text');
  }
  if (notifications) {
    const result = translateNotificationsText(text, Math.floor(msg.info.timestampNanos / 1e6));
    if (!result.ok) return invalid(result.error);
    return {
      events: result.batch.events,
      invalid: result.batch.invalid.map((bad) => ({ error: bad.error, part: bad.item })),
    };
  }
  const token = idToken(msg.subject, subjects);
  const subjectId = canonicalCallId(token);
  if (!subjectId.ok) return invalid(`(subject): the call id token ${subjectId.rule}`);
  const parsed = parseEnvelopeText(text);
  if (!parsed.ok) return invalid(parsed.error);
  if (parsed.value.callId !== subjectId.callId) {
    const quoted = JSON.stringify(truncated(token, LIMITS.echoChars));
    return invalid(
      `callId: must name the same call as the subject token ${quoted}${got(parsed.value.callId)}`,
    );
  }
  return { events: [parsed.value], invalid: [] };
}

function invalid(error: string): Decoded {
  return { events: [], invalid: [{ error }] };
}
