import { beforeAll, describe, expect, it } from 'vitest';
import type { InvalidRecord } from '../../src/contract/records.js';
import { type CallBus, incoming, newCallId, reject } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * Every kind of bad input on both input subjects: one record on
 * `<prefix>.invalid` naming the field and the rule, no call changed, and the
 * service carries on.
 */

const WINDOW_MS = 4_000;
const PREFIX = 'e2einvalid';
const NOTIFICATIONS = `${PREFIX}.graph.notifications`;

const e2e = useE2e({ scope: 'file' });

let bus: CallBus;
let service: CallgateProcess;

beforeAll(async () => {
  bus = await e2e.openBus(PREFIX);
  service = await startCallgate(e2e.env(PREFIX, WINDOW_MS));
});

/** Publish one message and wait for the invalid record it causes. */
async function invalidRecordFor(
  subject: string,
  data: string | Uint8Array,
): Promise<InvalidRecord> {
  const seen = bus.invalid.length;
  await bus.publish(subject, data);
  await eventually(() => bus.invalid.length > seen);
  const [record, ...more] = bus.invalid.slice(seen);
  expect(more).toEqual([]);
  return record as InvalidRecord;
}

const at = () => new Date().toISOString();
const id = newCallId();
const events = `${PREFIX}.events.${id}`;
const json = (value: unknown) => JSON.stringify(value);

describe('bad input on <prefix>.events.<id>', () => {
  it.each([
    ['text that is not JSON', 'not json', /^\(message\): must be JSON/],
    [
      'an unknown type',
      json({ type: 'call.ringing', callId: id, at: at() }),
      /^type: must be one of call\.incoming, call\.reject, call\.answered, call\.terminated \(got "call\.ringing"\)$/,
    ],
    ['a missing callId', json({ type: 'call.incoming', at: at() }), /^callId: is required$/],
    [
      'a callId naming another call than the subject',
      json({ type: 'call.incoming', callId: 'someone-else', at: at() }),
      /^callId: must name the same call as the subject token/,
    ],
    [
      'a callId with a dot',
      json({ type: 'call.incoming', callId: 'a.b', at: at() }),
      /^callId: must be ASCII letters, digits, "-" and "_" only \(no "\."/,
    ],
    [
      'an unknown reject reason',
      json({ type: 'call.reject', callId: id, at: at(), reason: 'maybe' }),
      /^reason: must be one of none, busy, forbidden$/,
    ],
    [
      'an http callbackUri',
      json({
        type: 'call.reject',
        callId: id,
        at: at(),
        reason: 'busy',
        callbackUri: 'http://bot.example.com/callback',
      }),
      /^callbackUri: must be an absolute https: URL$/,
    ],
    [
      'an `at` without an offset',
      json({ type: 'call.incoming', callId: id, at: '2026-11-27 09:00:00' }),
      /^at: must be an ISO-8601 date-time with an offset/,
    ],
    [
      'an `at` that is not a string',
      json({ type: 'call.incoming', callId: id, at: 1_795_770_000_000 }),
      /^at: must be an ISO-8601 date-time string with an offset$/,
    ],
  ])('%s is reported with the field and the rule', async (_what, body, error) => {
    const record = await invalidRecordFor(events, body);

    expect(record).toEqual({
      subject: events,
      error: expect.stringMatching(error),
      payload: body,
      at: expect.any(String),
    });
  });

  it('bytes that are not UTF-8 are reported with the payload in base64', async () => {
    const bytes = new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]);

    const record = await invalidRecordFor(events, bytes);

    expect(record).toMatchObject({
      subject: events,
      error: '(message): must be UTF-8 JSON text',
      payload: Buffer.from(bytes).toString('base64'),
    });
  });

  it('a subject token with characters a call id cannot have is reported as the subject', async () => {
    const subject = `${PREFIX}.events.a.b`;
    const body = json({ type: 'call.incoming', callId: 'a.b', at: at() });

    const record = await invalidRecordFor(subject, body);

    expect(record).toMatchObject({ subject, error: expect.stringMatching(/^\(subject\): /) });
  });
});

describe('bad input on the notifications subject', () => {
  it('text that is not JSON is reported', async () => {
    const record = await invalidRecordFor(NOTIFICATIONS, '{"value": [');

    expect(record).toMatchObject({
      subject: NOTIFICATIONS,
      error: expect.stringMatching(/^\(message\): must be JSON/),
      payload: '{"value": [',
    });
  });

  it('a `value` that is not an array is reported', async () => {
    const body = json({ '@odata.type': '#microsoft.graph.commsNotifications', value: {} });

    const record = await invalidRecordFor(NOTIFICATIONS, body);

    expect(record).toMatchObject({
      subject: NOTIFICATIONS,
      error: 'value: must be an array of notifications',
      payload: body,
    });
  });

  it('a notification naming no call is reported by its index, carrying that notification, and the rest of the batch still counts', async () => {
    const callId = newCallId();
    const bad = {
      changeType: 'created',
      resourceData: { '@odata.type': '#microsoft.graph.call', state: 'incoming' },
    };
    const body = json({
      '@odata.type': '#microsoft.graph.commsNotifications',
      value: [
        {
          changeType: 'created',
          resourceUrl: `/communications/calls/${callId}`,
          resourceData: { '@odata.type': '#microsoft.graph.call', state: 'incoming' },
        },
        bad,
      ],
    });

    const record = await invalidRecordFor(NOTIFICATIONS, body);
    await eventually(() => bus.recordsOf(callId).length === 1);

    expect(record).toMatchObject({
      subject: NOTIFICATIONS,
      error: 'value[1].resourceUrl: is required (or resource, or resourceData.id)',
      payload: JSON.stringify(bad),
    });
    expect(bus.recordsOf(callId)).toMatchObject([{ state: 'ringing', previous: null }]);
  });
});

describe('after all that bad input', () => {
  it('no call was changed by it, the service is alive, and a valid call is still rejected', async () => {
    expect(bus.recordsOf(id)).toEqual([]);
    expect(await service.get('/healthz')).toBe(200);
    expect(service.child.exitCode).toBeNull();

    const callId = newCallId();
    await bus.send(incoming(callId));
    await bus.send(reject(callId));
    const records = await bus.settled(callId);

    expect(records.map((r) => r.state)).toEqual(['ringing', 'rejecting', 'rejected']);
    const metrics = await (await fetch(`${service.httpUrl}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`^callgate_invalid_messages_total ${bus.invalid.length}$`, 'm'),
    );
    expect(bus.malformed).toEqual([]);
  });
});
