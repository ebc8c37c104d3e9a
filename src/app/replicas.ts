import { StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { busNames } from '../bus/jetstream.js';
import { whileTransient } from '../bus/transient.js';
import type { Log } from '../log.js';
import { Leases } from '../ownership/leases.js';
import { partitionOf } from '../ownership/partition.js';
import type { Metrics } from '../service/metrics.js';
import { MARK_GAP_MS } from '../service/publication-mark.js';
import type { ServiceOptions } from '../service/service.js';
import { IDLE_AWAKE, startService, takeOverConsumers } from '../service/service.js';
import { Shares } from '../service/shares.js';
import { goneFromThisPlace, memberId, placeOfThisProcess } from './place.js';

/**
 * How many partitions identical replicas share the calls in (NATS 2.10+):
 * a fair share for 1, 2, 3, 4 or 6 instances, and about one for 12.
 */
export const SHARED_PARTITIONS = 12;

/** How long a partition handed to an instance that joined may finish its requests. */
const HAND_OVER_MS = 2_000;

/**
 * How many partitions the calls are split into for the server at hand.
 * NATS 2.10 and newer partition events as the stream stores them (a subject
 * transform), so the replicas share {@link SHARED_PARTITIONS} partitions.
 * NATS 2.9 has no transforms: one partition, all calls, held by one
 * instance at a time (the others wait to take over).
 */
export function partitionsFor(serverVersion: string | undefined): number {
  const [major = 0, minor = 0] = (serverVersion ?? '').split('.').map(Number);
  return major > 2 || (major === 2 && minor >= 10) ? SHARED_PARTITIONS : 1;
}

export interface ReplicasOptions {
  readonly nc: NatsConnection;
  readonly subjectPrefix: string;
  readonly replicas: number;
  readonly metrics: Metrics;
  readonly log: Log;
}

/** The leases of this instance's share, in the bucket `callgate-<prefix>-owners`. */
export async function openLeases(options: ReplicasOptions, plan: () => void): Promise<Leases> {
  const { nc, log } = options;
  const kv = await whileTransient(async () => {
    const bucket = await new Kvm(nc).create(busNames(options.subjectPrefix).owners, {
      history: 1,
      storage: StorageType.File,
      replicas: options.replicas,
    });
    // A read answers only once the bucket has a leader (a cluster elects one).
    await bucket.get('member.none');
    return bucket;
  });
  const place = placeOfThisProcess();
  return new Leases({
    kv,
    me: memberId(place),
    isGone: (member) => goneFromThisPlace(member, place),
    count: partitionsFor(nc.info?.version),
    onChange: plan,
    onError: (error, what) => log.warn({ err: error }, `${what} failed`),
  });
}

/**
 * This instance's share of the calls: a service per partition it holds,
 * started with `service` (everything but the partition) and fenced by the
 * partition's lease.
 */
export function sharesOf(
  leases: Leases,
  service: Omit<ServiceOptions, 'partitions'>,
  options: ReplicasOptions & { onOwned?: (description: string) => void },
): Shares {
  // The layout the leases were opened with, whatever server this connection meets later.
  const { count } = leases;
  const shares: Shares = new Shares({
    leases,
    handOverMs: HAND_OVER_MS,
    ...(options.onOwned && { onOwned: options.onOwned }),
    metrics: options.metrics,
    log: options.log,
    start: async (partition, takeover) => {
      const own: ServiceOptions = {
        ...service,
        ...(count > 1 && { partitions: { count, index: partition } }),
        stream: { replicas: options.replicas, ...(count > 1 && { transform: count }) },
        bucketReplicas: options.replicas,
        mayAct: () => leases.valid(partition),
        // The instance's awake actors, shared by the partitions it may hold.
        idleAwake: Math.ceil(IDLE_AWAKE / count),
        // One instance's marks at the rate of one service's.
        markGapMs: MARK_GAP_MS * count,
        countLive: shares.liveCounter(partition),
      };
      const redeliveredUpTo = takeover
        ? await whileTransient(() => takeOverConsumers(service.nc, own))
        : 0;
      return whileTransient(() => startService({ ...own, redeliveredUpTo }));
    },
  });
  return shares;
}

/** Whether this instance may act on the call now: it holds its partition's lease. */
export function mayActOn(leases: Leases): (callId: string) => boolean {
  return (callId) => leases.valid(partitionOf(callId, leases.count));
}
