import { describe, expect, it } from 'vitest';
import { busNames } from '../../src/bus/jetstream.js';
import { partitionOf } from '../../src/ownership/partition.js';

describe('partitionOf', () => {
  it('is FNV-1a (32 bits) of the call id modulo the partition count', () => {
    // FNV-1a 32 of "a" is 0xe40c292c, of "" the offset basis 0x811c9dc5.
    expect(partitionOf('a', 0x1_0000_0000)).toBe(0xe40c292c);
    expect(partitionOf('', 0x1_0000_0000)).toBe(0x811c9dc5);
    expect(partitionOf('a', 7)).toBe(0xe40c292c % 7);
  });

  it('spreads call ids over every partition', () => {
    const ids = Array.from({ length: 400 }, (_, i) => `0000000${i}`.slice(-8).padEnd(36, 'f'));
    const counts = [0, 0, 0, 0];
    for (const id of ids) {
      const partition = partitionOf(id, 4);
      counts[partition] = (counts[partition] ?? 0) + 1;
    }
    expect(counts.every((n) => n > 50)).toBe(true);
  });
});

describe('bus names with partitions', () => {
  it('keep one consumer for everything when not partitioned', () => {
    expect(busNames('call')).toEqual({
      prefix: 'call',
      stream: 'callgate-call',
      consumer: 'callgate-call',
      bucket: 'callgate-call-calls',
      owners: 'callgate-call-owners',
      eventsSubject: 'call.events.>',
      notificationsSubject: 'graph.notifications',
    });
  });

  it('give each partition its consumer and keys, and partition 0 the router', () => {
    expect(busNames('call', 'graph.notifications', { count: 3, index: 0 })).toMatchObject({
      consumer: 'callgate-call-p0',
      partition: {
        eventsFilter: 'call.partition.0.*',
        keyPrefix: 'p0.',
        router: {
          eventsConsumer: 'callgate-call-router',
          eventsFilter: 'call.events.>',
          notificationsConsumer: 'callgate-call-notifications',
        },
      },
    });
    const second = busNames('call', 'graph.notifications', { count: 3, index: 2 });
    expect(second.consumer).toBe('callgate-call-p2');
    expect(second.partition?.router).toBeUndefined();
  });
});
