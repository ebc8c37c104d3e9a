import { describe, expect, it } from 'vitest';
import { decodeMessage, publishedSubject } from '../../src/service/decode.js';

const PARTITIONED = {
  notifications: 'graph.notifications',
  eventPrefixes: ['call.events.'],
  partitioned: { kept: 'call.partition.', published: 'call.events.' },
};
const ENCODER = new TextEncoder();

function message(subject: string, body: unknown) {
  return {
    subject,
    data: ENCODER.encode(JSON.stringify(body)),
    info: { deliveryCount: 1, timestampNanos: 0 },
  };
}

describe('an event kept in a partition', () => {
  it('is reported under the subject it was published on', () => {
    expect(publishedSubject('call.partition.7.abc', PARTITIONED)).toBe('call.events.abc');
    expect(publishedSubject('call.events.a.b', PARTITIONED)).toBe('call.events.a.b');
    expect(publishedSubject('call.partition.x.abc', PARTITIONED)).toBe('call.partition.x.abc');
    expect(publishedSubject('graph.notifications', PARTITIONED)).toBe('graph.notifications');
  });

  it('is decoded by the call id token after the partition', () => {
    const event = { type: 'call.incoming', callId: 'abc', at: '2026-12-02T10:00:00Z' };
    expect(decodeMessage(message('call.partition.7.abc', event), PARTITIONED)).toMatchObject({
      events: [{ type: 'call.incoming', callId: 'abc' }],
      invalid: [],
    });
    expect(decodeMessage(message('call.partition.7.xyz', event), PARTITIONED)).toMatchObject({
      events: [],
      invalid: [
        {
          error: expect.stringMatching(
            /^callId: must name the same call as the subject token "xyz"/,
          ),
        },
      ],
    });
  });
});
