import { describe, expect, it } from 'vitest';
import { messageWrites } from '../../src/service/message-writes.js';

function message() {
  const calls: string[] = [];
  return {
    calls,
    msg: { ack: () => calls.push('ack'), nak: (ms?: number) => calls.push(`nak ${ms}`) },
  };
}

describe('a message and its writes', () => {
  it('is acknowledged once, after it is applied and its last write is stored', () => {
    const { calls, msg } = message();
    const writes = messageWrites(msg);
    writes.waiting += 2;
    writes.stored();
    writes.applied();
    expect(calls).toEqual([]);
    writes.stored();
    expect(calls).toEqual(['ack']);
  });

  it('is acknowledged at once when it caused no write', () => {
    const { calls, msg } = message();
    messageWrites(msg).applied();
    expect(calls).toEqual(['ack']);
  });

  it('is redelivered after a second when one of its writes failed, once all are done', () => {
    const { calls, msg } = message();
    const writes = messageWrites(msg);
    writes.waiting += 2;
    writes.applied();
    writes.stored(new Error('refused'));
    expect(calls).toEqual([]);
    writes.stored();
    expect(calls).toEqual(['nak 1000']);
  });

  it('is redelivered when applying it failed, after the writes it started', () => {
    const { calls, msg } = message();
    const writes = messageWrites(msg);
    writes.waiting += 1;
    writes.fail();
    expect(calls).toEqual([]);
    writes.stored();
    expect(calls).toEqual(['nak 1000']);
  });
});
