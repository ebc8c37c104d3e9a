import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { isFinalState } from '../../machines/states.js';
import { SHARED_PARTITIONS } from '../../src/app/replicas.js';
import { InvalidRecord, LifecycleRecord } from '../../src/contract/records.js';
import { partitionOf } from '../../src/ownership/partition.js';
import { eventually } from './eventually.js';

/**
 * The test's side of the bus, as a user of callgate sees it: events go in
 * through JetStream on `<prefix>.events.<id>` (and notification batches on
 * `<prefix>.graph.notifications`), lifecycle and invalid records come out on
 * core NATS.
 */
export interface CallBus {
  readonly prefix: string;
  readonly nc: NatsConnection;
  readonly notificationsSubject: string;
  /** Every lifecycle record received so far, in arrival order. */
  readonly lifecycle: LifecycleRecord[];
  /** Every invalid record received so far, in arrival order. */
  readonly invalid: InvalidRecord[];
  /** Records that broke the record schema, or came on another call's subject. */
  readonly malformed: string[];
  /** Publish one event envelope on `<prefix>.events.<subjectId>` (default: its callId). */
  send(event: Record<string, unknown>, subjectId?: string): Promise<void>;
  /** Publish raw bytes or text to JetStream (retried while JetStream is unavailable). */
  publish(subject: string, data: string | Uint8Array): Promise<void>;
  /** The lifecycle records of one call, in arrival order. */
  recordsOf(callId: string): LifecycleRecord[];
  /** Wait until the call has a record in a final state (refusals aside); its records then. */
  settled(callId: string, timeoutMs?: number): Promise<LifecycleRecord[]>;
  /** Wait until JetStream answers for the input stream again (after a server restart). */
  streamAvailable(timeoutMs?: number): Promise<void>;
  /**
   * The state value of the call's stored snapshot (white box: the KV bucket
   * `callgate-<prefix>-calls`), to time a crash after a change was stored.
   */
  storedState(callId: string): Promise<unknown>;
  /** Wait until the durable consumer has nothing pending and nothing unacknowledged. */
  consumerIdle(timeoutMs?: number): Promise<void>;
  /** The durable consumer's messages not delivered yet, and delivered but not acknowledged. */
  consumerCounts(): Promise<{ pending: number; unacknowledged: number }>;
  close(): Promise<void>;
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isFinalRecord(record: LifecycleRecord): boolean {
  return isFinalState(record.state) && record.refused === undefined;
}

export async function openCallBus(natsUrl: string, prefix: string): Promise<CallBus> {
  const nc = await connect({
    servers: natsUrl,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 100,
  });
  const js = jetstream(nc);
  const lifecycle: LifecycleRecord[] = [];
  const invalid: InvalidRecord[] = [];
  const malformed: string[] = [];
  nc.subscribe(`${prefix}.lifecycle.>`, {
    callback: (_error, msg) => {
      const parsed = LifecycleRecord.safeParse(jsonOf(msg.string()));
      if (!parsed.success || msg.subject !== `${prefix}.lifecycle.${parsed.data.callId}`) {
        malformed.push(`${msg.subject}: ${msg.string()}`);
        return;
      }
      lifecycle.push(msg.json<LifecycleRecord>());
    },
  });
  nc.subscribe(`${prefix}.invalid`, {
    callback: (_error, msg) => {
      const parsed = InvalidRecord.safeParse(jsonOf(msg.string()));
      if (!parsed.success) {
        malformed.push(`${msg.subject}: ${msg.string()}`);
        return;
      }
      invalid.push(msg.json<InvalidRecord>());
    },
  });
  await nc.flush();

  const names = { stream: `callgate-${prefix}` };

  const bus: CallBus = {
    prefix,
    nc,
    notificationsSubject: `${prefix}.graph.notifications`,
    lifecycle,
    invalid,
    malformed,
    async publish(subject, data) {
      const until = Date.now() + 15_000;
      // One id for every try: JetStream stores the message once however often it is retried.
      const msgID = randomUUID();
      for (;;) {
        try {
          await js.publish(subject, data, { msgID, timeout: 1_000 });
          return;
        } catch (error) {
          if (Date.now() > until) throw error;
          await sleep(100);
        }
      }
    },
    send(event, subjectId) {
      return bus.publish(
        `${prefix}.events.${subjectId ?? String(event.callId)}`,
        JSON.stringify(event),
      );
    },
    recordsOf: (callId) => lifecycle.filter((record) => record.callId === callId),
    async settled(callId, timeoutMs = 15_000) {
      await eventually(() => bus.recordsOf(callId).some(isFinalRecord), { timeout: timeoutMs });
      return bus.recordsOf(callId);
    },
    async streamAvailable(timeoutMs = 15_000) {
      await eventually(
        async () => {
          try {
            const jsm = await jetstreamManager(nc, { timeout: 1_000 });
            return (await jsm.streams.info(names.stream)).config.name === names.stream;
          } catch {
            return false;
          }
        },
        { timeout: timeoutMs, interval: 100 },
      );
    },
    async storedState(callId) {
      const kv = await new Kvm(nc).open(`callgate-${prefix}-calls`);
      // Unpartitioned (NATS 2.9), or in its partition (NATS 2.10+).
      const entry =
        (await kv.get(callId)) ??
        (await kv.get(`p${partitionOf(callId, SHARED_PARTITIONS)}.${callId}`));
      return entry?.operation === 'PUT'
        ? entry.json<{ snapshot: { value: unknown } }>().snapshot.value
        : undefined;
    },
    async consumerIdle(timeoutMs = 10_000) {
      await eventually(
        async () => {
          const { pending, unacknowledged } = await bus.consumerCounts();
          return pending === 0 && unacknowledged === 0;
        },
        { timeout: timeoutMs, interval: 50 },
      );
    },
    async consumerCounts() {
      // Every durable consumer of the stream: one, or one per partition.
      const jsm = await jetstreamManager(nc);
      let pending = 0;
      let unacknowledged = 0;
      for await (const info of jsm.consumers.list(names.stream)) {
        pending += info.num_pending;
        unacknowledged += info.num_ack_pending;
      }
      return { pending, unacknowledged };
    },
    close: () => nc.close(),
  };
  return bus;
}

/** A fresh call id in Graph's canonical spelling (lower case, dashed). */
export const newCallId = (): string => randomUUID();

const iso = (ms = Date.now()) => new Date(ms).toISOString();

export const incoming = (callId: string, at = Date.now()) => ({
  type: 'call.incoming',
  callId,
  at: iso(at),
});

export const reject = (callId: string, reason = 'busy') => ({
  type: 'call.reject',
  callId,
  at: iso(),
  reason,
});

export const answered = (callId: string) => ({ type: 'call.answered', callId, at: iso() });

/** A record without its callId and time: what the contract fixes exactly. */
export function shape(record: LifecycleRecord): Omit<LifecycleRecord, 'callId' | 'at'> {
  const { callId: _callId, at: _at, ...rest } = record;
  return rest;
}

/** The environment `callgate serve` runs with in the end-to-end tests. */
export function serviceEnv(options: {
  natsUrl: string;
  graphUrl: string;
  prefix: string;
  answerTimeoutMs: number;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    NATS_URL: options.natsUrl,
    GRAPH_BASE_URL: options.graphUrl,
    GRAPH_TOKEN: 'e2e-token',
    ANSWER_TIMEOUT_MS: String(options.answerTimeoutMs),
    SUBJECT_PREFIX: options.prefix,
    NOTIFICATIONS_SUBJECT: `${options.prefix}.graph.notifications`,
    LOG_LEVEL: 'warn',
    ...options.extra,
  };
}
