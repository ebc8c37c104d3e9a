/**
 * Preloaded (`node --import`) into both measured pipelines by `bench e2e`,
 * so that the service and the naive pipeline are observed the same way and
 * from inside: every garbage collection (V8's GCProfiler: its kind, its
 * pause, the heap before and after, hence the bytes allocated between two
 * collections) and the event loop's delay (a 5 ms timer's lateness).
 *
 * On SIGUSR2 it prints one line, `bench-observe {…}`, with the totals since
 * it started, and the event-loop delay and the longest pause since the
 * previous line, then starts a new window. With `E2E_HEAP_PROF=<dir>` it also samples
 * allocations (collected objects included) and writes, at each line, the
 * profile of the window since the previous one to `<dir>`.
 *
 * Plain JavaScript: the service runs from dist/ without a TypeScript loader.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';

const PREFIX = 'bench-observe ';
const profiler = new GCProfiler();
const RESOLUTION_MS = 5;
const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
const totals = {
  allocated: 0,
  collections: 0,
  scavenges: 0,
  pauseUs: 0,
  over10ms: 0,
  /** Bytes the scavenges kept in the young generation, and moved to the old one. */
  survived: 0,
  promoted: 0,
};

/** The bytes used in one heap space, from a GCProfiler record. */
const spaceUsed = (stats, name) =>
  stats.heapSpaceStatistics.find((space) => space.spaceName === name)?.spaceUsedSize ?? 0;
let usedAfterLast = getHeapStatistics().used_heap_size;
/** The longest pause since the previous report (µs). */
let windowMaxUs = 0;
let window = 0;

profiler.start();
delay.enable();

/** Fold the collections since the last call into the totals. */
function fold() {
  const { statistics } = profiler.stop();
  profiler.start();
  for (const gc of statistics) {
    totals.allocated += Math.max(0, gc.beforeGC.heapStatistics.usedHeapSize - usedAfterLast);
    usedAfterLast = gc.afterGC.heapStatistics.usedHeapSize;
    // V8 reports a full collection's incremental marking apart: count the collection once.
    if (gc.gcType !== 'IncrementalMarking') totals.collections++;
    if (gc.gcType === 'Scavenge' || gc.gcType === 'MinorMarkSweep') {
      totals.scavenges++;
      totals.survived += spaceUsed(gc.afterGC, 'new_space');
      totals.promoted += Math.max(
        0,
        spaceUsed(gc.afterGC, 'old_space') - spaceUsed(gc.beforeGC, 'old_space'),
      );
    }
    totals.pauseUs += gc.cost;
    if (gc.cost >= 10_000) totals.over10ms++;
    windowMaxUs = Math.max(windowMaxUs, gc.cost);
  }
}

/**
 * `E2E_HEAP_PROF_SURVIVORS=1`: leave out what scavenges collected, so the
 * profile shows what outlived the young generation (promoted, then perhaps
 * collected by a full collection).
 */
const SAMPLING = {
  samplingInterval: 16_384,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: process.env.E2E_HEAP_PROF_SURVIVORS !== '1',
};

const heapDir = process.env.E2E_HEAP_PROF;
const session = heapDir ? startHeapSampling() : undefined;

function startHeapSampling() {
  const s = new Session();
  s.connect();
  s.post('HeapProfiler.enable');
  s.post('HeapProfiler.startSampling', SAMPLING);
  return s;
}

function writeHeapProfile(dir, n) {
  session?.post('HeapProfiler.stopSampling', (error, result) => {
    if (!error) {
      writeFileSync(join(dir, `${process.pid}-${n}.heapprofile`), JSON.stringify(result.profile));
    }
    session.post('HeapProfiler.startSampling', SAMPLING);
  });
}

process.on('SIGUSR2', () => {
  fold();
  const allocated =
    totals.allocated + Math.max(0, getHeapStatistics().used_heap_size - usedAfterLast);
  // The histogram holds whole timer intervals: the lateness is what exceeds the resolution.
  const ms = (ns) => Math.round(Math.max(0, ns - RESOLUTION_MS * 1e6) / 1e4) / 100;
  const line = {
    window: window++,
    ...totals,
    allocated,
    windowMaxUs,
    loopDelayMs: {
      p50: ms(delay.percentile(50)),
      p99: ms(delay.percentile(99)),
      max: ms(delay.max),
    },
  };
  delay.reset();
  windowMaxUs = 0;
  if (heapDir) writeHeapProfile(heapDir, line.window);
  process.stdout.write(`${PREFIX}${JSON.stringify(line)}\n`);
});
