import { callIdHash } from '../contract/call-id.js';

/**
 * Which call ids may belong to a final call still kept in the KV bucket:
 * 32-bit hashes of the ids, in generations that together cover the
 * retention period, the oldest dropped as time moves on. A hash costs about
 * 35 bytes where a tombstone in the runtime costs about 615 (`npm run bench --
 * replay`), so the service keeps whole tombstones only briefly and asks the
 * bucket about a call this filter may know. "No" is certain; "maybe" is wrong for about one id in
 * 2^32 / (final calls kept), and then costs one read of the bucket.
 */
export interface FinalFilter {
  add(callId: string): void;
  mightHold(callId: string): boolean;
  /** Hashes kept, over every generation. */
  readonly size: number;
}

export function createFinalFilter(options: {
  retentionMs: number;
  generations?: number;
  now?: () => number;
}): FinalFilter {
  const now = options.now ?? Date.now;
  const count = Math.max(2, options.generations ?? 8);
  // One generation more than the period needs: the oldest is dropped only
  // once everything in it is older than the retention period.
  const span = Math.ceil(options.retentionMs / (count - 1));
  const sets: Array<Set<number>> = Array.from({ length: count }, () => new Set<number>());
  let current = Math.floor(now() / span);

  function rotate(): void {
    const generation = Math.floor(now() / span);
    const steps = Math.min(count, generation - current);
    for (let i = 1; i <= steps; i++) sets[(current + i) % count]?.clear();
    if (generation > current) current = generation;
  }

  return {
    add(callId) {
      rotate();
      sets[current % count]?.add(callIdHash(callId));
    },
    mightHold(callId) {
      rotate();
      const hash = callIdHash(callId);
      return sets.some((set) => set.has(hash));
    },
    get size() {
      return sets.reduce((sum, set) => sum + set.size, 0);
    },
  };
}
