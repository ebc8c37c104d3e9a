import type { JetStreamClient } from '@nats-io/jetstream';
import { type DemoCall, type DemoKind, sleep } from './traffic.js';

/**
 * New calls wait while the service is further behind than this (ms): the
 * oldest message it has not finished acting on was published this long ago.
 * On a busy machine queueing would otherwise eat the short answer window.
 */
export const MAX_SERVICE_LAG_MS = 250;
/** A message with no sign of the service acting on it after this long stops holding calls back. */
const GIVE_UP_MS = 5_000;
/** Kinds whose reject Graph refuses at first by design: their decision is done once `rejecting`. */
const SLOW_KINDS: ReadonlySet<DemoKind> = new Set(['throttled', 'unavailable']);

type What = 'incoming' | 'incomingAgain' | 'decision' | 'rejectAgain';

/** A message of an already ringing call, due at `dueAt` (`performance.now()`). */
interface FollowUp {
  readonly dueAt: number;
  readonly call: DemoCall;
  readonly what: What;
}

function bodyOf(call: DemoCall, what: What): Record<string, unknown> {
  const base = { callId: call.callId, at: new Date().toISOString() };
  if (what === 'incoming' || what === 'incomingAgain') {
    return {
      type: 'call.incoming',
      ...base,
      tenantId: '8f7d9c1e-7b4a-4d2f-9c3e-1a2b3c4d5e6f',
      direction: 'incoming',
      source: { identity: { user: { id: `u${call.n}`, displayName: `Caller ${call.n}` } } },
    };
  }
  if (call.kind === 'answered') return { type: 'call.answered', ...base };
  if (call.kind === 'hungUp') {
    return { type: 'call.terminated', ...base, code: 0, message: 'The caller hung up.' };
  }
  return { type: 'call.reject', ...base, reason: call.reason };
}

/** What follows a call's `call.incoming`, timed from when it went out. */
function followUps(call: DemoCall, now: number): FollowUp[] {
  if (call.kind === 'timedOut') return [];
  const decideAt = now + (call.decideMs - call.startMs);
  const next: FollowUp[] = [{ dueAt: decideAt, call, what: 'decision' }];
  if (call.kind === 'duplicated') {
    next.push({ dueAt: now + 10, call, what: 'incomingAgain' });
    next.push({ dueAt: decideAt + 5, call, what: 'rejectAgain' });
  }
  return next;
}

export interface PublishHooks {
  /** Called just before a call's first `call.reject` is published. */
  beforeReject(call: DemoCall): void;
  /**
   * Announce a call the way Graph does: a signed notification POSTed to the
   * service's webhook. Without it, `call.incoming` is published on NATS.
   */
  placeCall?(call: DemoCall): Promise<void>;
  /** What the lifecycle records said so far: how many arrived for the call, and whether one was final. */
  readonly service: {
    records(callId: string): number;
    isFinal(callId: string): boolean;
  };
  readonly signal: AbortSignal;
}

export interface PublishResult {
  /** Messages JetStream stored, and repeated ones it dropped (same `Nats-Msg-Id`). */
  readonly stored: number;
  readonly duplicatesDropped: number;
  readonly elapsedMs: number;
  /** How long new calls waited for the service to catch up. */
  readonly heldBackMs: number;
}

/**
 * Publish every call's events on `<prefix>.events.<callId>` through JetStream,
 * new calls at their planned pace (held back while the service lags), each
 * call's decision its planned delay after its `call.incoming`. Many publishes
 * are in flight at once, awaited once per tick.
 */
export async function publishTraffic(
  js: JetStreamClient,
  prefix: string,
  calls: readonly DemoCall[],
  hooks: PublishHooks,
): Promise<PublishResult> {
  const started = performance.now();
  let base = started;
  let heldSince: number | undefined;
  let heldBackMs = 0;
  let next = 0;
  let pending: FollowUp[] = [];
  /** Messages the service has not finished acting on, oldest first. */
  const unread: Array<{ call: DemoCall; what: What; at: number }> = [];
  /**
   * Done: `call.incoming` once the call rings; a decision once the call is
   * final (Graph answered the reject), or `rejecting` for the slow kinds.
   */
  const actedOn = ({ call, what }: { call: DemoCall; what: What }) =>
    what === 'incoming'
      ? hooks.service.records(call.callId) >= 1
      : SLOW_KINDS.has(call.kind)
        ? hooks.service.records(call.callId) >= 2
        : hooks.service.isFinal(call.callId);
  let stored = 0;
  let duplicatesDropped = 0;

  const send = (call: DemoCall, what: What) => {
    const body = bodyOf(call, what);
    if (what === 'decision' && body.type === 'call.reject') hooks.beforeReject(call);
    if (what === 'incoming' || what === 'decision')
      unread.push({ call, what, at: performance.now() });
    // Duplicated calls stay on NATS, where JetStream drops the repeated incoming.
    if (what === 'incoming' && hooks.placeCall && call.kind !== 'duplicated') {
      return hooks.placeCall(call).then(() => {
        stored++;
      });
    }
    const incoming = what === 'incoming' || what === 'incomingAgain';
    const options = incoming ? { msgID: `incoming-${call.callId}` } : {};
    return js
      .publish(`${prefix}.events.${call.callId}`, JSON.stringify(body), options)
      .then((ack) => {
        if (ack.duplicate) duplicatesDropped++;
        else stored++;
      });
  };
  const lag = (now: number) => {
    for (let head = unread[0]; head; head = unread[0]) {
      if (!actedOn(head) && now - head.at < GIVE_UP_MS) break;
      unread.shift();
    }
    return unread[0] ? now - unread[0].at : 0;
  };

  while ((next < calls.length || pending.length > 0) && !hooks.signal.aborted) {
    const now = performance.now();
    const batch: Promise<void>[] = [];
    const due = pending.filter((f) => f.dueAt <= now).sort((a, b) => a.dueAt - b.dueAt);
    pending = pending.filter((f) => f.dueAt > now);
    for (const f of due) batch.push(send(f.call, f.what));
    const held = lag(now) > MAX_SERVICE_LAG_MS;
    if (held) heldSince ??= now;
    else if (heldSince !== undefined) {
      // Go on at the planned pace from here, with no burst to catch up.
      base += now - heldSince;
      heldBackMs += now - heldSince;
      heldSince = undefined;
    }
    for (
      let call = calls[next];
      !held && call && base + call.startMs <= now;
      call = calls[++next]
    ) {
      batch.push(send(call, 'incoming'));
      pending.push(...followUps(call, now));
    }
    await Promise.all(batch);
    const wakes = pending.map((f) => f.dueAt);
    const upcoming = calls[next];
    if (upcoming) wakes.push(held ? now + 5 : base + upcoming.startMs);
    if (wakes.length > 0) await sleep(Math.max(1, Math.min(...wakes) - performance.now()));
  }
  if (heldSince !== undefined) heldBackMs += performance.now() - heldSince;
  return { stored, duplicatesDropped, elapsedMs: performance.now() - started, heldBackMs };
}
