import { partitionOf } from './partition.js';

/**
 * Which calls this instance owns. The pipeline applies events only to calls
 * it owns, and acquires its share when it starts and releases it when it
 * stops, so that another instance can take the calls over.
 */
export interface Ownership {
  /** Whether this instance owns the call now. */
  owns(callId: string): boolean;
  /** Take this instance's share (before it consumes). */
  acquire(): Promise<void>;
  /** Give the share up (when it stops), for others to take over. */
  release(): Promise<void>;
  /** What this instance owns, in words, for logs and the live page. */
  readonly description: string;
}

/** One instance owns every call. */
export function ownsAll(): Ownership {
  return {
    owns: () => true,
    acquire: async () => {},
    release: async () => {},
    description: 'all calls',
  };
}

/** `PARTITIONS`/`PARTITION`: this instance owns the calls of one partition, numbered by hand. */
export function ownsPartition(index: number, count: number): Ownership {
  return {
    owns: (callId) => partitionOf(callId, count) === index,
    acquire: async () => {},
    release: async () => {},
    description: `partition ${index} of ${count}`,
  };
}
