import type { LifecycleRecord } from '../contract/records.js';
import type { CallChange, Cause, PersistedCall, Refusal } from './types.js';

/** A call that reached its final state: its actor, whose snapshot is read once xstate committed it. */
export interface Finishing {
  getPersistedSnapshot(): unknown;
}

/** A change as the journal hands it over: a final call's snapshot, its intake still to add. */
export type JournalChange<M> = Omit<CallChange<M>, 'store'> & {
  readonly store: 'nothing' | 'current' | 'forget' | { readonly final: PersistedCall };
};

interface Entry<M> {
  cause: Cause<M>;
  readonly records: LifecycleRecord[];
  store: 'nothing' | 'current' | 'forget' | { readonly finishing: Finishing };
  deadline: number | undefined;
  refusals: number;
}

const OUTCOME: Cause<never> = { kind: 'outcome' };

/**
 * The changes of one step, gathered call by call while it runs, and handed
 * over as values when it ends. A step is a delivered event, a timer, or a
 * restore; what a reject request's outcome changes (xstate settles it outside
 * any step) is gathered the same way and handed over at the next microtask,
 * once xstate has committed it, with the cause `outcome`.
 */
export class StepJournal<M> {
  readonly #onEnd: (changes: JournalChange<M>[]) => void;
  readonly #entries = new Map<string, Entry<M>>();
  #cause: Cause<M> = OUTCOME;
  #depth = 0;
  #queued = false;

  /**
   * `onEnd` receives each step's changes, one per changed call, in the order
   * they were first made (none when the step changed nothing).
   */
  constructor(onEnd: (changes: JournalChange<M>[]) => void) {
    this.#onEnd = onEnd;
  }

  /** Run `body` as one step caused by `cause` (nested steps join the outer one). */
  run<T>(cause: Cause<M>, body: () => T): T {
    if (this.#depth === 0) this.#cause = cause;
    this.#depth++;
    try {
      return body();
    } finally {
      this.#depth--;
      if (this.#depth === 0) {
        this.#cause = OUTCOME;
        this.end();
      }
    }
  }

  /** The call changed and is to be stored as it is when written. */
  changed(callId: string, deadline: number | undefined): void {
    const entry = this.#entry(callId);
    if (entry.store === 'nothing' || entry.store === 'forget') entry.store = 'current';
    entry.deadline ??= deadline;
  }

  /** Nothing is kept of the call any more: the store lets its key go. */
  forget(callId: string): void {
    this.#entry(callId).store = 'forget';
  }

  /** The call reached its final state in this step; its last snapshot is what to store. */
  finished(callId: string, actor: Finishing, deadline: number): void {
    const entry = this.#entry(callId);
    entry.store = { finishing: actor };
    entry.deadline ??= deadline;
  }

  record(callId: string, record: LifecycleRecord, deadline: number | undefined): void {
    const entry = this.#entry(callId);
    entry.records.push(record);
    entry.deadline ??= deadline;
    if (record.refused) entry.refusals++;
  }

  /** How many refusals the call's step has recorded so far. */
  refusals(callId: string): number {
    return this.#entries.get(callId)?.refusals ?? 0;
  }

  /** The call's last refusal in this step, if it has more than `before`. */
  refusedSince(callId: string, before: number): Refusal | undefined {
    const entry = this.#entries.get(callId);
    if (!entry || entry.refusals <= before) return undefined;
    return entry.records.findLast((record) => record.refused)?.refused;
  }

  /** Hand over what was gathered (also when a queued outcome's changes are due). */
  end(): void {
    this.#queued = false;
    const changes: JournalChange<M>[] = [];
    for (const [callId, entry] of this.#entries) {
      const { cause, records, store, deadline } = entry;
      const op =
        typeof store === 'object'
          ? { final: store.finishing.getPersistedSnapshot() as PersistedCall }
          : store;
      changes.push({ callId, cause, records, store: op, deadline });
    }
    this.#entries.clear();
    this.#onEnd(changes);
  }

  /** Forget what was gathered and not handed over. */
  clear(): void {
    this.#entries.clear();
  }

  #entry(callId: string): Entry<M> {
    let entry = this.#entries.get(callId);
    if (!entry) {
      entry = {
        cause: this.#cause,
        records: [],
        store: 'nothing',
        deadline: undefined,
        refusals: 0,
      };
      this.#entries.set(callId, entry);
    } else if (this.#cause.kind === 'event') {
      // An outcome's change not handed over yet: the message now waits for it too.
      entry.cause = this.#cause;
    }
    if (this.#depth === 0 && !this.#queued) {
      this.#queued = true;
      queueMicrotask(() => this.end());
    }
    return entry;
  }
}
