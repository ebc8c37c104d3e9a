import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** The service's Prometheus metrics, on one registry served at `GET /metrics`. */
export interface Metrics {
  readonly registry: Registry;
  readonly messages: Counter;
  readonly events: Counter<'type' | 'delivery'>;
  readonly invalid: Counter;
  readonly refused: Counter<'type'>;
  readonly finalCalls: Counter<'state'>;
  readonly attempts: Histogram;
  readonly rejectLatency: Histogram;
  readonly requestDuration: Histogram<'status'>;
  readonly liveCalls: Gauge;
  readonly inFlight: Gauge;
  readonly consumerLag: Gauge;
  readonly persistFailures: Counter;
  readonly redelivered: Counter;
  readonly finalLookups: Counter;
  readonly unreadableCalls: Counter;
  readonly gaveUp: Counter;
  readonly unstoredCalls: Gauge;
  readonly stale: Counter;
  readonly repairs: Counter<'what'>;
  /** Partitions of the calls this instance owns now. */
  readonly ownedPartitions: Gauge;
  /** Partitions this instance took, took over, handed over or lost. */
  readonly ownershipChanges: Counter<'change'>;
  /** Full collections of the heap when the process went quiet after a burst, by pause (`src/app/heap.ts`). */
  readonly heapCollections: Histogram;
}

/**
 * @example
 * const metrics = createMetrics();
 * metrics.finalCalls.inc({ state: 'rejected' });
 * await metrics.registry.metrics(); // Prometheus text
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'callgate_process_' });
  const registers = [registry];
  return {
    registry,
    ...ownershipMetrics(registers),
    messages: new Counter({
      name: 'callgate_messages_total',
      help: 'JetStream messages consumed',
      registers,
    }),
    events: new Counter({
      name: 'callgate_events_total',
      help: 'Call events processed, by type and what the runtime did with them',
      labelNames: ['type', 'delivery'],
      registers,
    }),
    invalid: new Counter({
      name: 'callgate_invalid_messages_total',
      help: 'Messages that could not be used (published on <prefix>.invalid)',
      registers,
    }),
    refused: new Counter({
      name: 'callgate_refused_commands_total',
      help: 'Valid commands that could not apply',
      labelNames: ['type'],
      registers,
    }),
    finalCalls: new Counter({
      name: 'callgate_calls_total',
      help: 'Calls that reached a final state, by state',
      labelNames: ['state'],
      registers,
    }),
    attempts: new Histogram({
      name: 'callgate_reject_attempts',
      help: 'Reject requests sent per call that reached a final state after rejecting',
      buckets: [1, 2, 3, 4, 5, 6, 7, 8],
      registers,
    }),
    rejectLatency: new Histogram({
      name: 'callgate_reject_latency_seconds',
      help: 'From a reject entering rejecting to Graph accepting it',
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15],
      registers,
    }),
    requestDuration: new Histogram({
      name: 'callgate_graph_request_seconds',
      help: 'Duration of each reject request to Graph, by status',
      labelNames: ['status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    liveCalls: new Gauge({
      name: 'callgate_live_calls',
      help: 'Calls not yet final',
      registers,
    }),
    inFlight: new Gauge({
      name: 'callgate_reject_requests_in_flight',
      help: 'Reject requests sent and not yet answered',
      registers,
    }),
    consumerLag: new Gauge({
      name: 'callgate_consumer_lag_messages',
      help: 'Messages in the stream not yet delivered to the consumer',
      registers,
    }),
    redelivered: new Counter({
      name: 'callgate_redelivered_events_total',
      help: 'Events of redelivered messages that had been applied and stored already',
      registers,
    }),
    finalLookups: new Counter({
      name: 'callgate_final_call_lookups_total',
      help: 'Events for a call not in memory that may be final, read from the KV bucket first',
      registers,
    }),
    repairs: new Counter({
      name: 'callgate_repairs_total',
      help: 'A stream, consumer or bucket found gone and made again, by what',
      labelNames: ['what'],
      registers,
    }),
    stale: new Counter({
      name: 'callgate_stale_messages_total',
      help: 'Messages older than RETENTION_MS minus the answer window, acknowledged without being applied',
      registers,
    }),
    unstoredCalls: new Gauge({
      name: 'callgate_unstored_calls',
      help: 'Calls whose last write failed: written again after a back-off; their records wait',
      registers,
    }),
    gaveUp: new Counter({
      name: 'callgate_messages_given_up_total',
      help: 'Messages that failed every attempt: reported on <prefix>.invalid and terminated',
      registers,
    }),
    unreadableCalls: new Counter({
      name: 'callgate_unreadable_calls_total',
      help: 'Stored calls this service cannot restore (a snapshot of another machine version), reported on <prefix>.invalid',
      registers,
    }),
    persistFailures: new Counter({
      name: 'callgate_persist_failures_total',
      help: 'Snapshot writes that failed (written again; the message, if any, is redelivered)',
      registers,
    }),
    heapCollections: new Histogram({
      name: 'callgate_heap_collection_seconds',
      help: 'Pauses of the full collections made once the process went quiet after its heap grew by 64 MiB',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
  };
}

function ownershipMetrics(registers: Registry[]) {
  return {
    ownedPartitions: new Gauge({
      name: 'callgate_owned_partitions',
      help: 'Partitions of the calls this instance owns now',
      registers,
    }),
    ownershipChanges: new Counter({
      name: 'callgate_ownership_changes_total',
      help: 'Partitions this instance acquired (free), took over (from an instance gone), handed over or lost',
      labelNames: ['change'] as const,
      registers,
    }),
  };
}
