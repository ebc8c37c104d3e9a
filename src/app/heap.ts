import { performance } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Log } from '../log.js';

/**
 * A full collection when the process has gone quiet after its heap grew.
 *
 * A burst of calls leaves the old generation full of objects that lived just
 * long enough to be promoted (messages waiting for their turn, writes waiting
 * for their PubAck, actors between two events). V8 collects them only when
 * the old generation next reaches its limit, and a process that then waits
 * for decisions allocates too little to get there: the pages stay committed
 * (docs/benchmarks.md has the figures with 100,000 calls ringing).
 *
 * So, once a second: when the event loop was busy less than
 * {@link QUIET_UTILIZATION} of the time for {@link QUIET_CHECKS} checks in a
 * row and the heap grew by {@link GROWTH_BYTES} or more since the last
 * collection, collect it in full. Under steady traffic the loop is never that
 * quiet and V8's own heuristics stay in charge.
 */

/** Event-loop utilisation (0–1) under which a second counts as quiet. */
export const QUIET_UTILIZATION = 0.05;
export const QUIET_CHECKS = 5;
export const GROWTH_BYTES = 64 * 2 ** 20;

export interface HeapSample {
  /** V8 heap in use (bytes). */
  readonly usedBytes: number;
  /** The event loop's utilisation since the previous sample (0–1). */
  readonly utilization: number;
}

/** The decision, apart from the clock and V8: fed one sample a second. */
export class CompactionPolicy {
  #baseline: number | undefined;
  #quiet = 0;

  /** True when this sample calls for a full collection. */
  due(sample: HeapSample): boolean {
    if (this.#baseline === undefined || sample.usedBytes < this.#baseline) {
      this.#baseline = sample.usedBytes;
    }
    this.#quiet = sample.utilization < QUIET_UTILIZATION ? this.#quiet + 1 : 0;
    return this.#quiet >= QUIET_CHECKS && sample.usedBytes - this.#baseline >= GROWTH_BYTES;
  }

  /** The heap in use just after a collection: growth counts from here. */
  collected(usedBytes: number): void {
    this.#baseline = usedBytes;
    this.#quiet = 0;
  }
}

/**
 * V8's full collection, exposed at run time when the process was not started
 * with `--expose-gc` (undefined when the engine refuses).
 */
export function fullCollection(): (() => void) | undefined {
  let gc: unknown = (globalThis as { gc?: unknown }).gc;
  try {
    if (typeof gc !== 'function') {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc');
    }
  } catch {
    return undefined;
  }
  if (typeof gc !== 'function') return undefined;
  return () => {
    // Compacted, the pages emptied are given back; V8's own full collections are left as they are.
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

export interface HeapCompactionOptions {
  readonly log: Log;
  /** Told after each collection. */
  readonly onCollected?: (pauseMs: number) => void;
  /** Default: {@link fullCollection}. */
  readonly collect?: () => void;
  readonly everyMs?: number;
  /** Default: the heap in use and the event loop's utilisation since the previous sample. */
  readonly sample?: () => HeapSample;
}

/** The process's own heap and event loop, sampled. */
export function processSampler(): () => HeapSample {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    last = now;
    return { usedBytes: getHeapStatistics().used_heap_size, utilization };
  };
}

/**
 * Check once a second (an unreferenced timer) and collect when due; returns
 * the stop function.
 *
 * @example
 * const stop = startHeapCompaction({ log, onCollected: (ms) => histogram.observe(ms / 1000) });
 */
export function startHeapCompaction(options: HeapCompactionOptions): () => void {
  const collect = options.collect ?? fullCollection();
  if (!collect) {
    options.log.warn('the heap cannot be collected on demand: it is left to V8 after bursts');
    return () => {};
  }
  const policy = new CompactionPolicy();
  const sample = options.sample ?? processSampler();
  const timer = setInterval(() => {
    const { usedBytes, utilization } = sample();
    if (!policy.due({ usedBytes, utilization })) return;
    const started = performance.now();
    collect();
    const pauseMs = performance.now() - started;
    const after = getHeapStatistics().used_heap_size;
    policy.collected(after);
    // The collection's own time is not traffic: the next window starts after it.
    sample();
    options.onCollected?.(pauseMs);
    options.log.info(
      { beforeMb: mb(usedBytes), afterMb: mb(after), pauseMs: Math.round(pauseMs) },
      'heap collected in full after a burst',
    );
  }, options.everyMs ?? 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
