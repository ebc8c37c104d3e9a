import { describe, expect, it } from 'vitest';
import { MessageAck } from '../../src/service/message-ack.js';

function message() {
  const calls: string[] = [];
  return {
    calls,
    msg: { seq: 7, ack: () => calls.push('ack'), nak: (ms?: number) => calls.push(`nak ${ms}`) },
  };
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
    ack.fail();
    expect(calls).toEqual([]);
    write();
    expect(calls).toEqual(['nak 1000']);
  });

  it('carries the stream sequence of its message', () => {
    expect(new MessageAck(message().msg).seq).toBe(7);
  });
});
