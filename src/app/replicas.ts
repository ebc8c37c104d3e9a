import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
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

/**
 * A member id unique to this process: where it runs (the host name and the
 * process-id namespace), the process id and a random part.
 */
export function memberId(place = placeOfThisProcess(), pid = process.pid): string {
  return `${place}-${pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * The host name and the inode of the process-id namespace (`x` where there
 * is none to read): two processes with the same place see each other's
 * process ids.
 */
export function placeOfThisProcess(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_-]/g, '_')
    .slice(0, 40);
  let namespace = 'x';
  try {
    namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? 'x';
  } catch {
    // Not Linux: no shortcut, every member's heartbeat ages.
  }
  return `${host}-${namespace}`;
}

/**
 * Whether a member ran in this place (host and process-id namespace) as a
 * process that no longer exists: then its heartbeat need not age before its
 * partitions are taken over (an instance restarted after a crash is ready at
 * once). A member elsewhere, or whose process id is in use, is judged by its
 * heartbeat as any other.
 */
export function goneFromThisPlace(
  member: string,
  place = placeOfThisProcess(),
  exists: (pid: number) => boolean = processExists,
): boolean {
  if (place.endsWith('-x') || !member.startsWith(`${place}-`)) return false;
  const pid = Number(/^(\d+)-[a-z0-9]+$/.exec(member.slice(place.length + 1))?.[1]);
  return Number.isInteger(pid) && pid > 0 && !exists(pid);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
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
