import type { Clock } from './clock.js';

/**
 * One timer for all calls: a min-heap of due times over a {@link Clock}, with
 * a single clock timer armed for the earliest entry. Entries are never
 * cancelled; whoever receives a due entry checks it is still current (the
 * machine's guards compare the event's `now` with the deadline in context).
 * The heap is kept in parallel arrays: about 32 bytes an entry, no object
 * per timer.
 *
 * @example
 * const scheduler = createScheduler<'deadline', string>({ clock, onDue: (kind, callId) => close(callId) });
 * scheduler.schedule(deadline, 'deadline', callId);
 */
export interface Scheduler<K, V> {
  schedule(at: number, kind: K, value: V): void;
  /** Due time of the earliest entry, if any. */
  nextAt(): number | undefined;
  /** Deliver every entry due at or before the clock's now, in time order. */
  fireDue(): void;
  readonly size: number;
  /** Disarm the clock timer; entries stay. */
  stop(): void;
}

export function createScheduler<K, V>(options: {
  clock: Clock;
  onDue: (kind: K, value: V, at: number) => void;
}): Scheduler<K, V> {
  const { clock, onDue } = options;
  const ats: number[] = [];
  const seqs: number[] = [];
  const kinds: K[] = [];
  const values: V[] = [];
  let seq = 0;
  let armedAt = Number.POSITIVE_INFINITY;
  let handle: unknown;
  let stopped = false;

  const before = (i: number, j: number) => {
    const a = ats[i] as number;
    const b = ats[j] as number;
    return a < b || (a === b && (seqs[i] as number) < (seqs[j] as number));
  };

  const swap = (i: number, j: number) => {
    [ats[i], ats[j]] = [ats[j] as number, ats[i] as number];
    [seqs[i], seqs[j]] = [seqs[j] as number, seqs[i] as number];
    [kinds[i], kinds[j]] = [kinds[j] as K, kinds[i] as K];
    [values[i], values[j]] = [values[j] as V, values[i] as V];
  };

  function siftUp(start: number) {
    let i = start;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(i, parent)) break;
      swap(i, parent);
      i = parent;
    }
  }

  function siftDown() {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let min = i;
      if (l < ats.length && before(l, min)) min = l;
      if (r < ats.length && before(r, min)) min = r;
      if (min === i) return;
      swap(i, min);
      i = min;
    }
  }

  function popInto(fire: (kind: K, value: V, at: number) => void) {
    const at = ats[0] as number;
    const kind = kinds[0] as K;
    const value = values[0] as V;
    const last = ats.length - 1;
    if (last > 0) swap(0, last);
    ats.pop();
    seqs.pop();
    kinds.pop();
    values.pop();
    if (last > 0) siftDown();
    fire(kind, value, at);
  }

  function arm() {
    const next = ats[0];
    if (stopped || next === undefined || next >= armedAt) return;
    if (handle !== undefined) clock.clearTimeout(handle);
    armedAt = next;
    handle = clock.setTimeout(
      () => {
        handle = undefined;
        armedAt = Number.POSITIVE_INFINITY;
        fireDue();
      },
      Math.max(0, next - clock.now()),
    );
  }

  function fireDue() {
    const now = clock.now();
    while (ats.length > 0 && (ats[0] as number) <= now) popInto(onDue);
    arm();
  }

  return {
    schedule(at, kind, value) {
      ats.push(at);
      seqs.push(seq++);
      kinds.push(kind);
      values.push(value);
      siftUp(ats.length - 1);
      arm();
    },
    nextAt: () => ats[0],
    fireDue,
    get size() {
      return ats.length;
    },
    stop() {
      stopped = true;
      if (handle !== undefined) clock.clearTimeout(handle);
      handle = undefined;
      armedAt = Number.POSITIVE_INFINITY;
    },
  };
}
