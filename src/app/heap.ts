import {
  constants,
  type PerformanceEntry,
  PerformanceObserver,
  performance,
} from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';
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
 * {@link QUIET_UTILIZATION} of the time and no reject request was in flight,
 * for {@link QUIET_CHECKS} checks in a row, and the old generation holds
 * {@link GROWTH_BYTES} or more beyond what the last full collection (V8's
 * own or this one) left in use, collect it in full and compacted. What is
 * live counts from that collection, so calls restored or taken over are not
 * taken for garbage once V8 has collected once; and after a compacted
 * collection the old generation holds little beyond its live objects, so a
 * quiet process is not collected again and again. Under traffic the loop is
 * rarely that quiet and V8's own heuristics stay in charge.
 */

/** Event-loop utilisation (0–1) under which a second counts as quiet. */
export const QUIET_UTILIZATION = 0.05;
export const QUIET_CHECKS = 5;
export const GROWTH_BYTES = 64 * 2 ** 20;

export interface HeapSample {
  /** The old generation: bytes committed, and bytes in use (live or not yet collected). */
  readonly oldCommitted: number;
  readonly oldUsed: number;
  /** The event loop's utilisation since the previous sample (0–1). */
  readonly utilization: number;
  /** Work is in flight (a reject request): the process is not quiet, whatever its loop does. */
  readonly busy: boolean;
}

/** The decision, apart from the clock and V8: fed one sample a second. */
export class CompactionPolicy {
  #baseline: number | undefined;
  #quiet = 0;

  /** True when this sample calls for a full collection. */
  due(sample: HeapSample): boolean {
    // Before any full collection, the least seen in use stands for what is live.
    if (this.#baseline === undefined || sample.oldUsed < this.#baseline) {
      this.#baseline = sample.oldUsed;
    }
    const quiet = sample.utilization < QUIET_UTILIZATION && !sample.busy;
    this.#quiet = quiet ? this.#quiet + 1 : 0;
    return this.#quiet >= QUIET_CHECKS && sample.oldCommitted - this.#baseline >= GROWTH_BYTES;
  }

  /** The old generation in use just after a full collection (this one's or V8's). */
  collected(oldUsed: number): void {
    this.#baseline = oldUsed;
    this.#quiet = 0;
  }
}

const COMPACT = '--compact-on-every-full-gc';

/**
 * V8's full collection, compacted so that the pages it empties go back to
 * the system; exposed at run time when the process was not started with
 * `--expose-gc` (undefined when the engine refuses). Compaction is turned on
 * for this collection only, unless the process was started with it on.
 */
export function fullCollection(
  execArgv = [...process.execArgv, process.env.NODE_OPTIONS ?? ''],
): (() => void) | undefined {
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
  const collect = gc as () => void;
  if (execArgv.some((arg) => arg.includes(COMPACT))) return () => collect();
  return () => {
    setFlagsFromString(COMPACT);
    try {
      collect();
    } finally {
      setFlagsFromString(`--no-${COMPACT.slice(2)}`);
    }
  };
}

/** The process's own heap and event loop, sampled; `restart` begins a new window. */
export interface Sampler {
  sample(): Omit<HeapSample, 'busy'>;
  restart(): void;
}

export function processSampler(): Sampler {
  let last = performance.eventLoopUtilization();
  return {
    sample() {
      const now = performance.eventLoopUtilization();
      const { utilization } = performance.eventLoopUtilization(now, last);
      last = now;
      return { ...oldGeneration(), utilization };
    },
    restart() {
      last = performance.eventLoopUtilization();
    },
  };
}

export interface HeapCompactionOptions {
  readonly log: Log;
  /** Reject requests in flight now: while there are any, the process is not quiet. */
  readonly inFlight: () => number;
  /** Told after each collection. */
  readonly onCollected?: (pauseMs: number) => void;
  /** Default: {@link fullCollection}; `null`: none to be had. */
  readonly collect?: (() => void) | null;
  readonly everyMs?: number;
  /** Default: {@link processSampler}. */
  readonly sampler?: Sampler;
}

/**
 * Check once a second (an unreferenced timer) and collect when due; returns
 * the stop function.
 *
 * @example
 * const stop = startHeapCompaction({ log, inFlight: () => requests.inFlight });
 */
export function startHeapCompaction(options: HeapCompactionOptions): () => void {
  const collect = options.collect === undefined ? fullCollection() : options.collect;
  if (!collect) {
    options.log.warn('the heap cannot be collected on demand: it is left to V8 after bursts');
    return () => {};
  }
  const policy = new CompactionPolicy();
  const sampler = options.sampler ?? processSampler();
  const majors = watchMajorCollections((usedBytes) => policy.collected(usedBytes));
  const timer = setInterval(() => {
    const sample = { ...sampler.sample(), busy: options.inFlight() > 0 };
    if (!policy.due(sample)) return;
    const started = performance.now();
    collect();
    const pauseMs = performance.now() - started;
    const after = oldGeneration();
    policy.collected(after.oldUsed);
    // The collection's own time is not traffic: the next window starts after it.
    sampler.restart();
    options.onCollected?.(pauseMs);
    options.log.info(
      {
        committedMb: `${mb(sample.oldCommitted)} → ${mb(after.oldCommitted)}`,
        usedMb: `${mb(sample.oldUsed)} → ${mb(after.oldUsed)}`,
        pauseMs: Math.round(pauseMs),
      },
      'heap collected in full after a burst',
    );
  }, options.everyMs ?? 1_000);
  timer.unref();
  return () => {
    clearInterval(timer);
    majors.disconnect();
  };
}

/** Tell `onMajor` the old generation in use after each of V8's own full collections. */
function watchMajorCollections(onMajor: (usedBytes: number) => void): PerformanceObserver {
  const observer = new PerformanceObserver((list) => {
    const major = list
      .getEntries()
      .some(
        (entry) =>
          (entry as PerformanceEntry & { readonly detail?: { readonly kind?: number } }).detail
            ?.kind === constants.NODE_PERFORMANCE_GC_MAJOR,
      );
    if (major) onMajor(oldGeneration().oldUsed);
  });
  observer.observe({ entryTypes: ['gc'] });
  return observer;
}

/** The old generation's committed and used bytes. */
function oldGeneration(): { oldCommitted: number; oldUsed: number } {
  const old = getHeapSpaceStatistics().find((space) => space.space_name === 'old_space');
  return { oldCommitted: old?.space_size ?? 0, oldUsed: old?.space_used_size ?? 0 };
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
