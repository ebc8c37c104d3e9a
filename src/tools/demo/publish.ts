import type { JetStreamClient } from '@nats-io/jetstream';
import {
  type Clock,
  type FollowUp,
  realClock,
  runSchedule,
  type ScheduleResult,
} from './schedule.js';
import type { DemoCall, DemoKind } from './traffic.js';

/**
 * New calls wait while the service is further behind than this (ms): the
 * oldest message it has not finished acting on was sent this long ago.
 * On a busy machine queueing would otherwise eat the short answer window.
 */
export const MAX_SERVICE_LAG_MS = 250;
/** A message with no sign of the service acting on it after this long stops holding calls back. */
const GIVE_UP_MS = 5_000;
/** Kinds whose reject Graph refuses at first by design: their decision is done once `rejecting`. */
const SLOW_KINDS: ReadonlySet<DemoKind> = new Set(['throttled', 'unavailable']);

type What = 'incoming' | FollowUp;

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

/** What the lifecycle records said so far: how many arrived for the call, and whether one was final. */
export interface ServiceView {
  records(callId: string): number;
  isFinal(callId: string): boolean;
}

export interface PublishHooks {
  /** Called just before a call's first `call.reject` is published. */
  beforeReject(call: DemoCall): void;
  /**
   * Announce a call the way Graph does: a signed notification POSTed to the
   * service's webhook; resolves once the webhook accepted it (202). Without
   * it, `call.incoming` is published on NATS.
   */
  placeCall?(call: DemoCall): Promise<void>;
  readonly service: ServiceView;
  readonly signal: AbortSignal;
  /** Default: `performance.now()` and `setTimeout`. */
  readonly clock?: Clock;
}

export interface PublishResult extends ScheduleResult {
  /** Messages stored (notifications accepted), and repeated ones JetStream dropped (same `Nats-Msg-Id`). */
  readonly stored: number;
  readonly duplicatesDropped: number;
}

/**
 * How far behind the service is: the age of the oldest message it has not
 * finished acting on. Done: `call.incoming` once the call rings; a decision
 * once the call is final (Graph answered the reject), or `rejecting` for the
 * slow kinds.
 */
function serviceLag(service: ServiceView) {
  /** Messages the service has not finished acting on, oldest first. */
  const unread: Array<{ call: DemoCall; what: What; at: number }> = [];
  let head = 0;
  const actedOn = ({ call, what }: { call: DemoCall; what: What }) =>
    what === 'incoming'
      ? service.records(call.callId) >= 1
      : SLOW_KINDS.has(call.kind)
        ? service.records(call.callId) >= 2
        : service.isFinal(call.callId);
  return {
    sent(call: DemoCall, what: What, at: number) {
      unread.push({ call, what, at });
    },
    lag(now: number): number {
      for (let oldest = unread[head]; oldest; oldest = unread[head]) {
        if (!actedOn(oldest) && now - oldest.at < GIVE_UP_MS) break;
        head++;
      }
      if (head > 1_024 && head * 2 > unread.length) {
        unread.splice(0, head);
        head = 0;
      }
      const oldest = unread[head];
      return oldest ? now - oldest.at : 0;
    },
  };
}

/**
 * Place every call and publish its events on `<prefix>.events.<callId>`
 * through JetStream: new calls at their planned pace, never waiting for
 * earlier ones (held back only while the service lags), each call's
 * decision its planned delay after its notification was accepted.
 */
export async function publishTraffic(
  js: JetStreamClient,
  prefix: string,
  calls: readonly DemoCall[],
  hooks: PublishHooks,
): Promise<PublishResult> {
  const clock = hooks.clock ?? realClock;
  const backlog = serviceLag(hooks.service);
  let stored = 0;
  let duplicatesDropped = 0;
  const publish = async (call: DemoCall, what: What) => {
    const incoming = what === 'incoming' || what === 'incomingAgain';
    const options = incoming ? { msgID: `incoming-${call.callId}` } : {};
    const body = JSON.stringify(bodyOf(call, what));
    const ack = await js.publish(`${prefix}.events.${call.callId}`, body, options);
    if (ack.duplicate) duplicatesDropped++;
    else stored++;
  };
  const result = await runSchedule(calls, {
    clock,
    maxLagMs: MAX_SERVICE_LAG_MS,
    signal: hooks.signal,
    lag: backlog.lag,
    async announce(call) {
      backlog.sent(call, 'incoming', clock.now());
      // Duplicated calls stay on NATS, where JetStream drops the repeated incoming.
      if (!hooks.placeCall || call.kind === 'duplicated') return publish(call, 'incoming');
      await hooks.placeCall(call);
      stored++;
    },
    follow(call, what) {
      if (what === 'decision') {
        if (call.kind !== 'answered' && call.kind !== 'hungUp') hooks.beforeReject(call);
        backlog.sent(call, what, clock.now());
      }
      return publish(call, what);
    },
  });
  return { ...result, stored, duplicatesDropped };
}
