import { describe, expect, it } from 'vitest';
import { type InboundMessage, MAX_DELIVERIES, MessageAck } from '../../src/service/message-ack.js';

function message(deliveryCount = 1) {
  const calls: string[] = [];
  const msg: InboundMessage = {
    subject: 'call.events.c1',
    data: new Uint8Array(),
    seq: 7,
    redelivered: deliveryCount > 1,
    info: { deliveryCount, timestampNanos: 0 },
    ack: () => calls.push('ack'),
    nak: (ms?: number) => calls.push(`nak ${ms}`),
    term: (reason?: string) => calls.push(`term ${reason}`),
  };
  return { calls, msg };
}

describe('a message and its writes', () => {
  it('is acknowledged once, after it is applied and its last write is stored', () => {
    const { calls, msg } = message();
    const ack = new MessageAck(msg);
    const first = ack.wait();
    const second = ack.wait();
    first();
    ack.applied();
    expect(calls).toEqual([]);
    second();
    expect(calls).toEqual(['ack']);
  });

  it('is acknowledged at once when it caused no write', () => {
    const { calls, msg } = message();
    new MessageAck(msg).applied();
    expect(calls).toEqual(['ack']);
  });

  it('is redelivered after a second when one of its writes failed, once all are done', () => {
    const { calls, msg } = message();
    const ack = new MessageAck(msg);
    const first = ack.wait();
    const second = ack.wait();
    ack.applied();
    first(new Error('refused'));
    expect(calls).toEqual([]);
    second();
    expect(calls).toEqual(['nak 1000']);
  });

  it('is redelivered when applying it failed, after the writes it started', () => {
    const { calls, msg } = message();
    const ack = new MessageAck(msg);
    const write = ack.wait();
    ack.fail(new Error('boom'));
    expect(calls).toEqual([]);
    write();
    expect(calls).toEqual(['nak 1000']);
  });

  it('waits twice as long before each later attempt, at most 30 s', () => {
    const delays = [1, 2, 3, 5, 7].map((count) => {
      const { calls, msg } = message(count);
      new MessageAck(msg).fail(new Error('boom'));
      return calls[0];
    });
    expect(delays).toEqual(['nak 1000', 'nak 2000', 'nak 4000', 'nak 16000', 'nak 30000']);
  });

  it(`is given up on after ${MAX_DELIVERIES} attempts: reported, then terminated, never redelivered`, () => {
    const { calls, msg } = message(MAX_DELIVERIES);
    const given: string[] = [];
    new MessageAck(msg, (m, error) => given.push(`${m.subject}: ${error.message}`)).fail(
      new Error('boom'),
    );
    expect(given).toEqual(['call.events.c1: boom']);
    expect(calls).toEqual(['term boom']);
  });

  it('carries the stream sequence of its message', () => {
    expect(new MessageAck(message().msg).seq).toBe(7);
  });
});
