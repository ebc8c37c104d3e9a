import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../src/contract/limits.js';
import { InvalidRecord } from '../../src/contract/records.js';
import { invalidRecord } from '../../src/service/invalid.js';

const AT = Date.parse('2026-11-27T09:00:00.000Z');

describe('an invalid record', () => {
  it('carries the message text, and base64 when it is not UTF-8', () => {
    const text = invalidRecord('call.events.c1', new TextEncoder().encode('{"a"'), 'x: y', AT);
    expect(text).toEqual({
      subject: 'call.events.c1',
      error: 'x: y',
      payload: '{"a"',
      at: '2026-11-27T09:00:00.000Z',
    });
    const binary = invalidRecord('call.events.c1', new Uint8Array([0xff, 0xfe]), 'x: y', AT);
    expect(binary.payload).toBe('//4=');
  });

  it('carries one notification as JSON when the error is about it', () => {
    const record = invalidRecord(
      'graph.notifications',
      { part: { changeType: 1 } },
      'value[0]…',
      AT,
    );
    expect(record.payload).toBe('{"changeType":1}');
  });

  it('is always small enough to send: its payload cut to 64 KiB, marked truncated', () => {
    const big = new TextEncoder().encode('x'.repeat(900 * 1024));
    const record = invalidRecord('call.events.c1', big, 'e', AT);
    expect(record.payload).toHaveLength(LIMITS.invalidPayloadChars);
    expect(record.truncated).toBe(true);
    expect(InvalidRecord.parse(record)).toEqual(record);
    expect(JSON.stringify(record).length).toBeLessThan(70 * 1024);
  });
});
