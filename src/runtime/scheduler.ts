import type { Clock } from './clock.js';

/**
 * One timer for all calls: a min-heap of due times over a {@link Clock}, with
 * a single clock timer armed for the earliest entry. Entries are never
 * cancelled; whoever receives a due payload checks it is still current (the
 * machine's guards compare the event's `now` with the deadline in context).
 *
 * @example
 * const scheduler = createScheduler<string>({ clock, onDue: (callId) => closeWindow(callId) });
 * scheduler.schedule(deadline, callId);
 */
export interface Scheduler<P> {
  schedule(at: number, payload: P): void;
  /** Due time of the earliest entry, if any. */
  nextAt(): number | undefined;
  /** Deliver every entry due at or before the clock's now, in time order. */
  fireDue(): void;
  readonly size: number;
  /** Disarm the clock timer; entries stay. */
  stop(): void;
}

interface Entry<P> {
  readonly at: number;
  readonly seq: number;
  readonly payload: P;
}

export function createScheduler<P>(options: {
  clock: Clock;
  onDue: (payload: P, at: number) => void;
}): Scheduler<P> {
  const { clock, onDue } = options;
  const heap: Entry<P>[] = [];
  let seq = 0;
  let armedAt = Number.POSITIVE_INFINITY;
  let handle: unknown;
  let stopped = false;

  const before = (a: Entry<P>, b: Entry<P>) => a.at < b.at || (a.at === b.at && a.seq < b.seq);

  function push(entry: Entry<P>) {
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as Entry<P>, heap[parent] as Entry<P>)) break;
      [heap[i], heap[parent]] = [heap[parent] as Entry<P>, heap[i] as Entry<P>];
      i = parent;
    }
  }

  function pop(): Entry<P> | undefined {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let min = i;
        if (l < heap.length && before(heap[l] as Entry<P>, heap[min] as Entry<P>)) min = l;
        if (r < heap.length && before(heap[r] as Entry<P>, heap[min] as Entry<P>)) min = r;
        if (min === i) break;
        [heap[i], heap[min]] = [heap[min] as Entry<P>, heap[i] as Entry<P>];
        i = min;
      }
    }
    return top;
  }

  function arm() {
    const next = heap[0];
    if (stopped || !next || next.at >= armedAt) return;
    if (handle !== undefined) clock.clearTimeout(handle);
    armedAt = next.at;
    handle = clock.setTimeout(
      () => {
        handle = undefined;
        armedAt = Number.POSITIVE_INFINITY;
        fireDue();
      },
      Math.max(0, next.at - clock.now()),
    );
  }

  function fireDue() {
    const now = clock.now();
    while (heap.length > 0 && (heap[0] as Entry<P>).at <= now) {
      const entry = pop() as Entry<P>;
      onDue(entry.payload, entry.at);
    }
    arm();
  }

  return {
    schedule(at, payload) {
      push({ at, seq: seq++, payload });
      arm();
    },
    nextAt: () => heap[0]?.at,
    fireDue,
    get size() {
      return heap.length;
    },
    stop() {
      stopped = true;
      if (handle !== undefined) clock.clearTimeout(handle);
      handle = undefined;
      armedAt = Number.POSITIVE_INFINITY;
    },
  };
}
