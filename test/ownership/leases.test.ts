import { setTimeout as sleep } from 'node:timers/promises';
import { type KV, Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Leases } from '../../src/ownership/leases.js';
import { eventually } from '../support/eventually.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';

/** Partition leases against a real nats-server, with the timing scaled down. */

const TIMING = { heartbeatMs: 50, fenceMs: 300, deadMs: 400 };

let server: NatsServer;
let nc: NatsConnection;
let bucketNo = 0;
const started: Leases[] = [];

beforeAll(async () => {
  server = await startNatsServer();
  nc = await connect({ servers: server.url });
});
afterEach(() => {
  for (const leases of started.splice(0)) leases.stop();
});
afterAll(async () => {
  await nc?.close();
  await server?.dispose();
});

async function bucket(): Promise<KV> {
  return new Kvm(nc).create(`owners-${++bucketNo}`, { history: 1 });
}

async function member(
  kv: KV,
  me: string,
  changes: string[] = [],
  isGone?: (member: string) => boolean,
): Promise<Leases> {
  const leases = new Leases({
    kv,
    me,
    count: 4,
    timing: TIMING,
    ...(isGone && { isGone }),
    onChange: () => changes.push(me),
    onError: () => {},
  });
  started.push(leases);
  await leases.start();
  return leases;
}

describe('partition leases', () => {
  it('give a free partition to one member only, and see each other alive', async () => {
    const kv = await bucket();
    const [a, b] = [await member(kv, 'a'), await member(kv, 'b')];
    const taken = await Promise.all([a.acquire(2), b.acquire(2)]);

    expect(taken.filter(Boolean)).toHaveLength(1);
    const holder = taken[0] ? a : b;
    const other = taken[0] ? b : a;
    expect(holder.valid(2)).toBe(true);
    await eventually(() => other.ownerOf(2) === holder.me);
    expect(other.valid(2)).toBe(false);
    await eventually(() => a.liveMembers().join() === 'a,b' && b.liveMembers().join() === 'a,b');
  });

  it('take over at once from a member known to be gone, its heartbeat still fresh', async () => {
    const kv = await bucket();
    const gone = new Set<string>();
    const a = await member(kv, 'a');
    expect(await a.acquire(1)).toBe(true);
    const b = await member(kv, 'b', [], (id) => gone.has(id));
    await eventually(() => b.ownerOf(1) === 'a' && b.isAlive('a'));
    expect(await b.acquire(1)).toBe(false);

    a.stop();
    gone.add('a');
    // Within the heartbeat's dead time: only the shortcut lets it go.
    expect(b.isAlive('a')).toBe(false);
    expect(await b.acquire(1)).toBe(true);
    expect(b.liveMembers()).toEqual(['b']);
  });

  it('stop being valid to a holder whose heartbeat stopped before the others may take over', async () => {
    const kv = await bucket();
    const [a, b] = [await member(kv, 'a'), await member(kv, 'b')];
    expect(await a.acquire(0)).toBe(true);
    await eventually(() => b.ownerOf(0) === 'a');

    a.stop();
    const stoppedAt = Date.now();
    await eventually(() => !a.valid(0), { interval: 10 });
    const fencedAfter = Date.now() - stoppedAt;
    await eventually(() => !b.isAlive('a'), { interval: 10 });
    const goneAfter = Date.now() - stoppedAt;

    expect(fencedAfter).toBeLessThan(goneAfter);
    expect(await b.acquire(0)).toBe(true);
    expect(b.valid(0)).toBe(true);
  });

  it('hand a partition over by release, and leave the members when told', async () => {
    const kv = await bucket();
    const [a, b] = [await member(kv, 'a'), await member(kv, 'b')];
    expect(await a.acquire(1)).toBe(true);
    await eventually(() => b.ownerOf(1) === 'a');
    // Held by a live member: not free to take.
    expect(await b.acquire(1)).toBe(false);

    await a.release(1);
    await eventually(() => b.ownerOf(1) === undefined);
    expect(await b.acquire(1)).toBe(true);

    await a.leave();
    await eventually(() => !b.liveMembers().includes('a'));
  });

  it('let a leaving member hand over: the others plan without it but take nothing from it', async () => {
    const kv = await bucket();
    const [a, b] = [await member(kv, 'a'), await member(kv, 'b')];
    expect(await a.acquire(0)).toBe(true);
    await eventually(() => b.ownerOf(0) === 'a');

    await a.beginLeaving();
    await eventually(() => b.liveMembers().join() === 'b');
    expect(a.liveMembers()).toEqual(['b']);
    expect(b.isAlive('a')).toBe(true);
    expect(await b.acquire(0)).toBe(false);
    expect(a.valid(0)).toBe(true);

    await a.release(0);
    await eventually(() => b.ownerOf(0) === undefined);
    expect(await b.acquire(0)).toBe(true);
    await a.leave();
  });

  it('date a stale heartbeat found at start-up by when it was stored: no full wait to take over', async () => {
    const kv = await bucket();
    await kv.put('member.gone', JSON.stringify({ at: 0 }));
    await kv.put('lease.4.3', JSON.stringify({ owner: 'gone' }));
    // Older than the wait, and the margin given to clocks that disagree.
    await sleep(TIMING.deadMs + 400);
    const b = await member(kv, 'b');

    expect(b.ownerOf(3)).toBe('gone');
    expect(b.isAlive('gone')).toBe(false);
    expect(await b.acquire(3)).toBe(true);
  });
});
