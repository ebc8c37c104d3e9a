import { canonicalCallId } from './call-id.js';
import { type CallEnvelope, type EventType, INCOMING_FIELDS, parseEnvelope } from './events.js';
import { parseJson } from './json.js';
import { got, LIMITS } from './limits.js';

/**
 * The wire contract of `graph.notifications`: a Graph `commsNotifications`
 * payload exactly as Graph POSTs it to a bot's callback URL. Each notification
 * of the batch becomes at most one event envelope; roster updates, operation
 * updates and states callgate does not act on are counted as ignored.
 */

/** The result of translating one batch. */
export interface TranslatedBatch {
  /** Events in the order of the batch, already valid, canonical CallEnvelope values. */
  events: CallEnvelope[];
  /**
   * One entry per notification that could not be used: `error` names the
   * field with its index, `item` is the notification (for its invalid record).
   */
  invalid: { index: number; error: string; item: unknown }[];
  /** How many notifications were valid but carry nothing callgate acts on. */
  ignored: number;
}

export type TranslateResult = { ok: true; batch: TranslatedBatch } | { ok: false; error: string };

const COMMS_NOTIFICATIONS = '#microsoft.graph.commsnotifications';
const CALL_RESOURCE = '#microsoft.graph.call';
const CHANGE_TYPES = ['created', 'updated', 'deleted'] as const;
/** `/communications/calls/{id}` or `/app/calls/{id}`, possibly behind a host and version. */
const CALL_PATH = /\/(?:communications|app)\/calls\/([^/]*)$/i;

type Outcome =
  | { kind: 'event'; event: CallEnvelope }
  | { kind: 'ignored' }
  | { kind: 'invalid'; error: string };

type PathField = 'resourceUrl' | 'resource';

/** The fields of one notification that translation looks at, type-checked. */
interface Notification {
  changeType: string;
  path?: { field: PathField; value: string };
  data?: Record<string, unknown> | unknown[];
  state?: string;
}

type Step<T> = { ok: true; value: T } | { ok: false; error: string };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Graph sometimes spells an absent optional field as `null`. */
function isPresent(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/**
 * Turn one Graph `commsNotifications` payload into call events.
 *
 * `at` is the epoch-ms time the message was stored in JetStream: notifications
 * carry no time of their own, so every event of the batch gets this time.
 * One bad notification is reported in `invalid` and never drops the others.
 *
 * @throws RangeError when `at` is not a representable epoch-ms time.
 * @example
 * translateNotifications(
 *   {
 *     '@odata.type': '#microsoft.graph.commsNotifications',
 *     value: [
 *       {
 *         changeType: 'deleted',
 *         resourceUrl: '/communications/calls/2F1A1100726E4C1EB6F2A1B2C3D4E5F6',
 *         resourceData: { state: 'terminated', resultInfo: { code: 0, subcode: 540000 } },
 *       },
 *     ],
 *   },
 *   Date.parse('2026-11-27T09:00:00Z'),
 * );
 * // { ok: true, batch: { events: [{ type: 'call.terminated', callId: '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6',
 * //   at: 1795770000000, code: '0', subcode: '540000' }], invalid: [], ignored: 0 } }
 */
export function translateNotifications(payload: unknown, at: number): TranslateResult {
  const atIso = isoTime(at);
  const items = readBatch(payload);
  if (!items.ok) {
    return items;
  }
  const batch: TranslatedBatch = { events: [], invalid: [], ignored: 0 };
  const used = items.value.slice(0, LIMITS.batchItems);
  used.forEach((item, index) => {
    const outcome = translateOne(item, index, atIso);
    if (outcome.kind === 'event') {
      batch.events.push(outcome.event);
    } else if (outcome.kind === 'invalid') {
      batch.invalid.push({ index, error: outcome.error, item });
    } else {
      batch.ignored += 1;
    }
  });
  const left = items.value.length - used.length;
  if (left > 0) {
    const error = `value: at most ${LIMITS.batchItems} notifications are read from one batch; ${left} more were not used`;
    batch.invalid.push({ index: used.length, error, item: items.value.slice(used.length) });
  }
  return { ok: true, batch };
}

/**
 * Decode one message body (UTF-8 JSON text) and translate it like
 * {@link translateNotifications}.
 *
 * @example
 * translateNotificationsText('{"value": []}', Date.now())
 * // { ok: true, batch: { events: [], invalid: [], ignored: 0 } }
 * translateNotificationsText('{', Date.now())
 * // { ok: false, error: '(message): must be JSON (…)' }
 */
export function translateNotificationsText(text: string, at: number): TranslateResult {
  const json = parseJson(text);
  return json.ok ? translateNotifications(json.value, at) : json;
}

/**
 * True when a decoded body is not a Graph `commsNotifications` payload at all
 * but looks like a legacy (pre-Graph) notification: a JSON object with no
 * `value` and no `commsNotifications` type. The webhook answers such a body
 * `204`, and Graph resends it in Graph format.
 *
 * @example
 * isLegacyNotification({ id: 'abc', callState: 'incoming' })                 // true
 * isLegacyNotification({ '@odata.type': '#microsoft.graph.commsNotifications', value: [] }) // false
 * isLegacyNotification([])                                                    // false
 */
export function isLegacyNotification(payload: unknown): boolean {
  return (
    isRecord(payload) && !Object.hasOwn(payload, 'value') && !hasCommsNotificationsType(payload)
  );
}

function hasCommsNotificationsType(payload: Record<string, unknown>): boolean {
  const type = payload['@odata.type'];
  return typeof type === 'string' && type.toLowerCase() === COMMS_NOTIFICATIONS;
}

function isoTime(at: number): string {
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(`at must be an epoch-ms time (got ${String(at)})`);
  }
  return date.toISOString();
}

/** The wrapper: an object, `@odata.type` absent or commsNotifications, `value` an array. */
function readBatch(payload: unknown): Step<unknown[]> {
  if (!isRecord(payload)) {
    return { ok: false, error: '(message): must be a JSON object' };
  }
  const type = payload['@odata.type'];
  if (isPresent(type) && !hasCommsNotificationsType(payload)) {
    return {
      ok: false,
      error: `@odata.type: must be #microsoft.graph.commsNotifications when present${got(type)}`,
    };
  }
  const items = payload.value;
  if (!Array.isArray(items)) {
    return { ok: false, error: 'value: must be an array of notifications' };
  }
  return { ok: true, value: items };
}

function translateOne(item: unknown, index: number, atIso: string): Outcome {
  const read = readNotification(item, `value[${index}]`);
  if (!read.ok) {
    return { kind: 'invalid', error: read.error };
  }
  const notification = read.value;
  if (!isAboutTheCall(notification)) {
    return { kind: 'ignored' };
  }
  const callId = resolveCallId(notification, `value[${index}]`);
  if (!callId.ok) {
    return { kind: 'invalid', error: callId.error };
  }
  const type = eventTypeOf(notification);
  if (type === null) {
    return { kind: 'ignored' };
  }
  return buildEvent(type, callId.value, atIso, notification, `value[${index}].resourceData`);
}

/** Type-check the fields translation reads; their meaning is judged later. */
function readNotification(item: unknown, where: string): Step<Notification> {
  if (!isRecord(item)) {
    return { ok: false, error: `${where}: must be an object` };
  }
  const changeType = item.changeType;
  if (typeof changeType !== 'string') {
    const rule = isPresent(changeType) ? 'must be a string' : 'is required';
    return { ok: false, error: `${where}.changeType: ${rule}` };
  }
  const path = readPath(item, where);
  if (!path.ok) {
    return path;
  }
  const data = readResourceData(item.resourceData, `${where}.resourceData`);
  if (!data.ok) {
    return data;
  }
  const notification: Notification = { changeType, path: path.value, data: data.value };
  return readState(notification, `${where}.resourceData.state`);
}

/** `resourceUrl` when present, otherwise `resource`; both must be strings when present. */
function readPath(item: Record<string, unknown>, where: string): Step<Notification['path']> {
  let chosen: Notification['path'];
  for (const field of ['resource', 'resourceUrl'] as const) {
    const value = item[field];
    if (!isPresent(value)) {
      continue;
    }
    if (typeof value !== 'string') {
      return { ok: false, error: `${where}.${field}: must be a string` };
    }
    chosen = { field, value };
  }
  return { ok: true, value: chosen };
}

function readResourceData(value: unknown, where: string): Step<Notification['data']> {
  if (!isPresent(value)) {
    return { ok: true, value: undefined };
  }
  if (isRecord(value) || Array.isArray(value)) {
    return { ok: true, value };
  }
  return { ok: false, error: `${where}: must be an object or an array` };
}

function readState(notification: Notification, where: string): Step<Notification> {
  const data = notification.data;
  const state = isRecord(data) ? data.state : undefined;
  if (!isPresent(state)) {
    return { ok: true, value: notification };
  }
  if (typeof state !== 'string') {
    return { ok: false, error: `${where}: must be a string` };
  }
  return { ok: true, value: { ...notification, state } };
}

/**
 * False for what callgate ignores whatever its content: participant roster
 * collections, paths below a call (participants, operations) and resources
 * that are not a `#microsoft.graph.call`.
 */
function isAboutTheCall(notification: Notification): boolean {
  const { data, path } = notification;
  if (Array.isArray(data)) {
    return false;
  }
  if (path !== undefined && callIdInPath(path.value) === undefined) {
    return false;
  }
  const type = data?.['@odata.type'];
  return typeof type !== 'string' || type.toLowerCase() === CALL_RESOURCE;
}

/** The last segment of a call path, or undefined when the path is not a call's own path. */
function callIdInPath(path: string): string | undefined {
  const bare = path.replace(/[?#].*$/, '');
  return CALL_PATH.exec(bare)?.[1];
}

/** `resourceData.id` when present, otherwise the call path's last segment; both must agree. */
function resolveCallId(notification: Notification, where: string): Step<string> {
  const fromPath = pathCallId(notification.path, where);
  const fromData = dataCallId(notification.data, `${where}.resourceData.id`);
  if (fromData === undefined) {
    return (
      fromPath ?? {
        ok: false,
        error: `${where}.resourceUrl: is required (or resource, or resourceData.id)`,
      }
    );
  }
  if (fromPath === undefined) {
    return fromData;
  }
  if (!fromData.ok || !fromPath.ok) {
    return fromData.ok ? fromPath : fromData;
  }
  if (fromData.value !== fromPath.value) {
    const field = notification.path?.field ?? 'resourceUrl';
    return {
      ok: false,
      error: `${where}.resourceData.id: must name the same call as ${field} (got ${fromData.value}, ${field} names ${fromPath.value})`,
    };
  }
  return fromData;
}

function pathCallId(path: Notification['path'], where: string): Step<string> | undefined {
  if (path === undefined) {
    return undefined;
  }
  const raw = callIdInPath(path.value) ?? '';
  const result = canonicalCallId(raw);
  return result.ok
    ? { ok: true, value: result.callId }
    : { ok: false, error: `${where}.${path.field}: the call id ${result.rule}` };
}

function dataCallId(data: Notification['data'], where: string): Step<string> | undefined {
  const id = isRecord(data) ? data.id : undefined;
  if (!isPresent(id)) {
    return undefined;
  }
  if (typeof id !== 'string') {
    return { ok: false, error: `${where}: must be a string` };
  }
  const result = canonicalCallId(id);
  return result.ok
    ? { ok: true, value: result.callId }
    : { ok: false, error: `${where}: ${result.rule}` };
}

/**
 * `deleted` or state `terminated` → `call.terminated`; state `established` →
 * `call.answered`; `created` + state `incoming` → `call.incoming`; anything
 * else (unknown change types, establishing, hold, ringing, …) → null.
 */
function eventTypeOf({ changeType, state }: Notification): EventType | null {
  if (!(CHANGE_TYPES as readonly string[]).includes(changeType)) {
    return null;
  }
  if (changeType === 'deleted' || state === 'terminated') {
    return 'call.terminated';
  }
  if (state === 'established') {
    return 'call.answered';
  }
  if (changeType === 'created' && state === 'incoming') {
    return 'call.incoming';
  }
  return null;
}

function buildEvent(
  type: EventType,
  callId: string,
  at: string,
  notification: Notification,
  where: string,
): Outcome {
  const data = isRecord(notification.data) ? notification.data : {};
  const extra = extraFields(type, data, where);
  if (!extra.ok) {
    return { kind: 'invalid', error: extra.error };
  }
  const parsed = parseEnvelope({ type, callId, at, ...extra.value.fields });
  if (!parsed.ok) {
    return { kind: 'invalid', error: locate(parsed.error, extra.value.origin) };
  }
  return { kind: 'event', event: parsed.value };
}

/** The event's own fields, and where in the notification they came from. */
function extraFields(
  type: EventType,
  data: Record<string, unknown>,
  where: string,
): Step<{ fields: Record<string, unknown>; origin: string }> {
  if (type === 'call.incoming') {
    return { ok: true, value: { fields: pick(data, INCOMING_FIELDS), origin: where } };
  }
  if (type !== 'call.terminated' || !isPresent(data.resultInfo)) {
    return { ok: true, value: { fields: {}, origin: where } };
  }
  if (!isRecord(data.resultInfo)) {
    return { ok: false, error: `${where}.resultInfo: must be an object` };
  }
  const fields = pick(data.resultInfo, ['code', 'subcode', 'message']);
  return { ok: true, value: { fields, origin: `${where}.resultInfo` } };
}

function pick(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const picked: Record<string, unknown> = {};
  for (const key of keys) {
    if (isPresent(source[key])) {
      picked[key] = source[key];
    }
  }
  return picked;
}

/** Rewrite parseEnvelope's `field: rule; …` so each field is named where the notification holds it. */
function locate(error: string, origin: string): string {
  return error
    .split('; ')
    .map((part) => `${origin}.${part}`)
    .join('; ');
}
