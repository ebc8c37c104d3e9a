import type { InspectionEvent, Observer } from 'xstate';
import {
  isFinalState,
  isSending,
  type StateValue,
  stateNameOf,
  whyRefused,
} from '../../machines/states.js';
import type { CallContext, CallEvent, CallStateName } from '../../machines/types.js';
import type { CallEnvelope } from '../contract/events.js';
import type { Clock } from './clock.js';
import { EarlyEvents } from './early-events.js';
import { hasTaken, type Intake, NO_INTAKE, takeIn } from './intake.js';
import { type LogicEvents, provideCallLogic, RequestsInFlight } from './logic.js';
import type { CallControl, RuntimeLog } from './ports.js';
import { refusalRecord, Timestamps, transitionRecord } from './records.js';
import { Recovery } from './recovery.js';
import { type CallActor, Residency } from './residency.js';
import { createScheduler, type Scheduler } from './scheduler.js';
import { type JournalChange, StepJournal } from './steps.js';
import { type Tombstone, Tombstones } from './tombstones.js';
import type {
  CallChange,
  CallKnowledge,
  Cause,
  PersistedCall,
  StepResult,
  StoredForm,
} from './types.js';

export type * from './types.js';

/**
 * What a timer is for: one heap holds every call's deadline and back-off,
 * the expiry of early events, and (in replays) simulated request latency.
 */
export type TimerKind = 'deadline' | 'retry' | 'hold' | 'callback';
/** A call id, or for `callback` the function to run. */
export type TimerValue = string | (() => void);

export interface CallRuntimeOptions<M> {
  readonly clock: Clock;
  /** The answer window (ms). */
  readonly windowMs: number;
  readonly control: CallControl;
  readonly log?: RuntimeLog;
  /** Receives every actor's inspection events (the Stately inspector). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /**
   * Receives each step's changes, one per changed call: before `deliver()`
   * returns for a delivered event (so a host can store a message's effects
   * before acknowledging it), at the next microtask for a request's outcome.
   */
  readonly onChanges?: (changes: CallChange<M>[]) => void;
  /** How many waiting calls keep a running actor, the least recently used resting first (default 0). */
  readonly idleAwake?: number;
  /** Keep every live call's actor running for its whole life, for an inspector (about 4 KB a call). */
  readonly keepAwake?: boolean;
  /** How long a final call is remembered whole (default: for ever). */
  readonly tombstoneMemoryMs?: number;
  /** How long the host's store keeps final calls; their ids' hashes are kept that long (default: no store). */
  readonly storedMs?: number;
}

export interface DeliverOptions<M> {
  /** The host's message that carried the event: the cause of the changes it makes. */
  readonly message?: M;
  /**
   * The message's stream sequence: taken into the call's intake when the step
   * that applied it changed something to store, and stored with that change.
   */
  readonly mark?: number;
  /** The message was delivered before: an earlier run may have sent a reject for it. */
  readonly redelivered?: boolean;
}

/**
 * The per-call host: one xstate actor per call, keyed by call id, that rests
 * as its snapshot between steps; events held for calls not seen yet;
 * tombstones for final calls; one scheduler for every deadline and back-off.
 * It owns no I/O: Graph is reached through `control`, and every step's
 * changes (records and what to store) are handed to `onChanges`.
 */
export interface CallRuntime<M = undefined> {
  /** Route one valid event to its call. Synchronous; a reject request runs on. */
  deliver(envelope: CallEnvelope, options?: DeliverOptions<M>): StepResult;
  /** The earliest-deadline-first timer shared by all calls. */
  readonly scheduler: Scheduler<TimerKind, TimerValue>;
  /** Live (non-final) calls. */
  readonly liveCount: number;
  /** Reject requests started and not yet settled. */
  readonly inFlight: number;
  /**
   * Bring back a stored call (a final one becomes a tombstone): its deadline
   * and back-off are re-armed from context alone (xstate keeps no pending
   * timers in a snapshot, statelyai/xstate#4860), and a request that was in
   * flight is sent again with its outcome counted as unknown — at once, or
   * with `deferResend` when {@link resendDeferred} says.
   */
  restore(snapshot: PersistedCall, options?: { deferResend?: boolean; intake?: Intake }): void;
  /** Hold again the stored events of a call not seen yet. */
  restoreHeld(callId: string, events: readonly CallEnvelope[], intake?: Intake): void;
  /** A final call that the store keeps: remembered by a hash of its id only. */
  rememberStored(callId: string): void;
  /**
   * Send again up to `max` of the requests that `deferResend` left, earliest
   * restored first; returns how many are left. A call whose turn has not come
   * is recovered first anyway when an event or timer reaches it.
   */
  resendDeferred(max: number): number;
  /** What a store writes for the call now: its snapshot, or the events held for it. */
  storedFormOf(callId: string): StoredForm | undefined;
  /**
   * Whether the call has taken in the message with stream sequence `seq`
   * (live, held, or final and remembered whole); `false` when it is not
   * known here.
   */
  hasTaken(callId: string, seq: number): boolean;
  /** The state of a call: live, final, or unknown (`undefined`). */
  stateOf(callId: string): CallStateName | undefined;
  knows(callId: string): CallKnowledge;
  /** Disarm the timers and drop every call; outcomes that settle later change nothing. */
  stop(): void;
}

const APPLIED: StepResult = { delivery: 'applied' };
const IGNORED: StepResult = { delivery: 'ignored' };
const HELD: StepResult = { delivery: 'held' };
const NOT_HELD: StepResult = { delivery: 'notHeld' };
const DUPLICATE: StepResult = { delivery: 'duplicate' };
const IGNORED_FINAL: StepResult = { delivery: 'ignoredFinal' };
const TIMER: Cause<never> = { kind: 'timer' };
const RECOVERY: Cause<never> = { kind: 'recovery' };
const NO_LOG: RuntimeLog = { warn: () => {}, error: () => {} };

/** @example const runtime = createCallRuntime({ clock: systemClock, windowMs: 15_000, control: graph, onChanges }); */
export function createCallRuntime<M = undefined>(options: CallRuntimeOptions<M>): CallRuntime<M> {
  return new CallHost(options);
}

class CallHost<M> implements CallRuntime<M>, LogicEvents {
  readonly scheduler: Scheduler<TimerKind, TimerValue>;
  readonly #clock: Clock;
  readonly #windowMs: number;
  readonly #log: RuntimeLog;
  readonly #onChanges: ((changes: CallChange<M>[]) => void) | undefined;
  readonly #requests = new RequestsInFlight();
  readonly #residency: Residency;
  readonly #journal: StepJournal<M>;
  readonly #early: EarlyEvents;
  readonly #tombstones: Tombstones;
  readonly #recovery = new Recovery();
  /** The messages each live call has taken in. */
  readonly #intakes = new Map<string, Intake>();
  readonly #times = new Timestamps();
  #stopped = false;

  constructor(options: CallRuntimeOptions<M>) {
    const { clock, windowMs } = options;
    this.#clock = clock;
    this.#windowMs = windowMs;
    this.#log = options.log ?? NO_LOG;
    this.#onChanges = options.onChanges;
    this.scheduler = createScheduler<TimerKind, TimerValue>({
      clock,
      onDue: (kind, value) => this.#due(kind, value),
    });
    const logic = provideCallLogic({
      control: options.control,
      clock,
      events: this,
      requests: this.#requests,
    });
    this.#residency = new Residency({
      logic,
      clock,
      windowMs,
      idleAwake: options.idleAwake ?? 0,
      keepAwake: options.keepAwake ?? false,
      ...(options.inspect && { inspect: options.inspect }),
    });
    this.#journal = new StepJournal<M>((changes) => this.#handOver(changes));
    this.#early = new EarlyEvents(windowMs);
    this.#tombstones = new Tombstones({
      now: () => clock.now(),
      memoryMs: options.tombstoneMemoryMs,
      storedMs: options.storedMs,
    });
  }

  get liveCount(): number {
    return this.#residency.size;
  }

  get inFlight(): number {
    return this.#requests.count;
  }

  deliver(envelope: CallEnvelope, options: DeliverOptions<M> = {}): StepResult {
    if (this.#stopped) throw new Error('the call runtime was stopped');
    const cause: Cause<M> = { kind: 'event', message: options.message as M, mark: options.mark };
    return this.#journal.run(cause, () => this.#apply(envelope, options.redelivered === true));
  }

  restore(snapshot: PersistedCall, options: { deferResend?: boolean; intake?: Intake } = {}): void {
    const { callId, deadline, retryAt, reason, attempts } = snapshot.context;
    const state = stateNameOf(snapshot.value as StateValue);
    const intake = options.intake ?? NO_INTAKE;
    if (isFinalState(state)) {
      this.#tombstones.remember(callId, { state, reason, attempts, intake });
      return;
    }
    this.#intakes.set(callId, intake);
    const sending = isSending(snapshot.value as StateValue);
    // The request in flight at the crash died with the process: drop its
    // child so that `call.recovered` sends it again with fresh input.
    this.#residency.admit(callId, sending ? { ...snapshot, children: {} } : snapshot);
    this.scheduler.schedule(deadline, 'deadline', callId);
    if (retryAt !== null) this.scheduler.schedule(retryAt, 'retry', callId);
    if (!sending) return;
    this.#recovery.add(callId);
    if (!options.deferResend) this.#resend(callId);
  }

  restoreHeld(callId: string, events: readonly CallEnvelope[], intake = NO_INTAKE): void {
    const now = this.#clock.now();
    for (const envelope of events) {
      const expiresAt = this.#early.hold(envelope, now);
      if (expiresAt !== undefined) this.scheduler.schedule(expiresAt, 'hold', callId);
    }
    this.#early.restoreIntake(callId, intake);
  }

  rememberStored(callId: string): void {
    this.#tombstones.rememberStored(callId);
  }

  resendDeferred(max: number): number {
    for (const callId of this.#recovery.next(max)) this.#resend(callId);
    return this.#recovery.size;
  }

  storedFormOf(callId: string): StoredForm | undefined {
    const snapshot = this.#residency.snapshotOf(callId);
    if (snapshot) return { snapshot, intake: this.#intakes.get(callId) ?? NO_INTAKE };
    const held = this.#early.heldFor(callId);
    return held && { held, intake: this.#early.intakeOf(callId) };
  }

  hasTaken(callId: string, seq: number): boolean {
    const intake =
      this.#intakes.get(callId) ??
      this.#tombstones.get(callId)?.intake ??
      (this.#early.has(callId) ? this.#early.intakeOf(callId) : undefined);
    return intake !== undefined && hasTaken(intake, seq);
  }

  stateOf(callId: string): CallStateName | undefined {
    return this.#residency.stateOf(callId) ?? this.#tombstones.get(callId)?.state;
  }

  knows(callId: string): CallKnowledge {
    if (this.#residency.has(callId)) return 'live';
    if (this.#tombstones.get(callId)) return 'final';
    if (this.#early.has(callId)) return 'held';
    return this.#tombstones.mayBeStored(callId) ? 'maybeStored' : 'unknown';
  }

  stop(): void {
    this.#stopped = true;
    this.scheduler.stop();
    this.#residency.clear();
    this.#recovery.clear();
    this.#early.clear();
    this.#tombstones.clear();
    this.#journal.clear();
    this.#intakes.clear();
  }

  // The machine's actions (LogicEvents).

  entered(context: CallContext, state: CallStateName, previous: CallStateName | null): void {
    if (this.#stopped) return;
    const { callId, deadline } = context;
    const record = transitionRecord(context, state, previous, this.#now());
    this.#journal.record(callId, record, deadline);
    if (!isFinalState(state)) {
      this.#touch(callId, deadline);
      return;
    }
    // The actor stops itself at the end of this step; a tombstone stays.
    const actor = this.#residency.actorOf(callId);
    this.#residency.release(callId);
    const intake = this.#intakes.get(callId) ?? NO_INTAKE;
    this.#intakes.delete(callId);
    const { reason, attempts } = context;
    this.#tombstones.remember(callId, { state, reason, attempts, intake });
    if (actor) this.#journal.finished(callId, actor, deadline);
  }

  refused(context: CallContext, state: CallStateName, type: string, why: string): void {
    if (this.#stopped) return;
    const record = refusalRecord(context.callId, state, { type, why }, this.#now(), context);
    this.#journal.record(context.callId, record, context.deadline);
  }

  backingOff(context: CallContext): void {
    if (context.retryAt !== null) this.scheduler.schedule(context.retryAt, 'retry', context.callId);
    this.#touch(context.callId, context.deadline);
  }

  // Steps.

  #apply(envelope: CallEnvelope, redelivered: boolean): StepResult {
    const { callId } = envelope;
    const tombstone = this.#tombstones.get(callId);
    if (tombstone) return this.#applyToFinal(envelope, tombstone);
    if (envelope.type === 'call.incoming') return this.#incoming(envelope);
    const actor = this.#wake(callId);
    if (!actor) return this.#hold(envelope);
    const now = this.#clock.now();
    if (this.#closeIfDue(actor, now)) return this.#apply(envelope, redelivered);
    return this.#send(actor, toMachineEvent(envelope, now, redelivered));
  }

  #applyToFinal(envelope: CallEnvelope, tombstone: Tombstone): StepResult {
    if (envelope.type !== 'call.reject') return IGNORED_FINAL;
    const refusal = { type: envelope.type, why: whyRefused(tombstone.state) };
    const record = refusalRecord(envelope.callId, tombstone.state, refusal, this.#now(), tombstone);
    this.#journal.record(envelope.callId, record, undefined);
    return { delivery: 'refused', refusal };
  }

  #incoming(envelope: CallEnvelope & { type: 'call.incoming' }): StepResult {
    const { callId } = envelope;
    if (this.#residency.has(callId)) return DUPLICATE;
    const now = this.#clock.now();
    const windowMs = this.#windowMs;
    const actor = this.#residency.start({ callId, at: envelope.at, now, windowMs });
    const { deadline } = actor.getSnapshot().context;
    if (deadline <= now) actor.send({ type: 'window.closed', now });
    else this.scheduler.schedule(deadline, 'deadline', callId);
    this.#touch(callId, deadline);
    const early = this.#early.take(callId, now);
    // The messages that brought the held events are taken in with the call.
    if (this.#residency.has(callId)) this.#intakes.set(callId, early.intake);
    else this.#tombstones.update(callId, (t) => ({ ...t, intake: early.intake }));
    for (const event of early.events) this.#apply(event, false);
    return APPLIED;
  }

  #send(actor: CallActor, event: CallEvent): StepResult {
    const before = actor.getSnapshot();
    const { callId, deadline } = before.context;
    const refusals = this.#journal.refusals(callId);
    actor.send(event);
    const refusal = this.#journal.refusedSince(callId, refusals);
    if (refusal) return { delivery: 'refused', refusal };
    if (actor.getSnapshot() === before) return IGNORED;
    this.#touch(callId, deadline);
    return APPLIED;
  }

  #hold(envelope: CallEnvelope): StepResult {
    const expiresAt = this.#early.hold(envelope, this.#clock.now());
    if (expiresAt === undefined) return NOT_HELD;
    this.scheduler.schedule(expiresAt, 'hold', envelope.callId);
    this.#journal.changed(envelope.callId, undefined);
    return HELD;
  }

  /** The call's running actor (restored if it rests); a call restored mid-request sends it again. */
  #wake(callId: string): CallActor | undefined {
    const actor = this.#residency.wake(callId);
    if (actor && this.#recovery.take(callId)) this.#recover(actor);
    return actor;
  }

  /** The request in flight at a crash: send it again (past the deadline the caller closes the window). */
  #recover(actor: CallActor): void {
    const now = this.#clock.now();
    const { context } = actor.getSnapshot();
    if (now >= context.deadline) return;
    actor.send({ type: 'call.recovered', now });
    this.#touch(context.callId, context.deadline);
  }

  #resend(callId: string): void {
    this.#journal.run(RECOVERY, () => {
      const actor = this.#wake(callId);
      this.#recovery.take(callId);
      if (actor) this.#closeIfDue(actor, this.#clock.now());
    });
  }

  /**
   * The deadline passed but its timer has not fired yet (it fires on the next
   * turn, or a replay line arrived late): close the window first, so an event
   * never lands on a call whose window is already closed.
   */
  #closeIfDue(actor: CallActor, now: number): boolean {
    const snapshot = actor.getSnapshot();
    if (snapshot.status !== 'active') return true;
    if (now < snapshot.context.deadline) return false;
    actor.send({ type: 'window.closed', now });
    this.#touch(snapshot.context.callId, snapshot.context.deadline);
    return true;
  }

  #due(kind: TimerKind, value: TimerValue): void {
    if (typeof value === 'function') value();
    else if (kind === 'hold') this.#expireHeld(value);
    else this.#journal.run(TIMER, () => this.#timerDue(kind, value));
  }

  #timerDue(kind: TimerKind, callId: string): void {
    const now = this.#clock.now();
    const actor = this.#wake(callId);
    if (!actor || this.#closeIfDue(actor, now) || kind !== 'retry') return;
    actor.send({ type: 'retry.due', now });
    this.#touch(callId, actor.getSnapshot().context.deadline);
  }

  #expireHeld(callId: string): void {
    const expired = this.#early.expire(callId, this.#clock.now());
    for (const envelope of expired) {
      this.#log.warn(
        { callId, type: envelope.type },
        'dropped an event for a call that never came',
      );
    }
    // None left: nothing of the call stays, in memory or in the store.
    if (expired.length > 0 && !this.#early.has(callId)) {
      this.#journal.run(TIMER, () => this.#journal.forget(callId));
    }
  }

  /** Note a changed call: it is stored, and is the last to rest. */
  #touch(callId: string, deadline: number): void {
    this.#residency.used(callId);
    this.#journal.changed(callId, deadline);
  }

  /**
   * The end of a step: each changed call takes in the message that changed
   * it, waiting calls may rest, and the host gets the changes.
   */
  #handOver(journal: JournalChange<M>[]): void {
    if (this.#stopped) return;
    const changes = journal.map((change) => this.#settle(change));
    if (changes.length > 0) this.#onChanges?.(changes);
    this.#residency.restExcess();
  }

  #settle(change: JournalChange<M>): CallChange<M> {
    const { callId, cause, store } = change;
    this.#residency.settled(callId);
    if (cause.kind === 'event' && cause.mark !== undefined && store !== 'nothing') {
      this.#takeIn(callId, cause.mark);
    }
    if (typeof store !== 'object') return change as CallChange<M>;
    const intake = this.#tombstones.get(callId)?.intake ?? NO_INTAKE;
    return { ...change, store: { final: store.final, intake } };
  }

  #takeIn(callId: string, seq: number): void {
    const live = this.#intakes.get(callId);
    if (live) this.#intakes.set(callId, takeIn(live, seq));
    else if (this.#residency.has(callId)) this.#intakes.set(callId, takeIn(NO_INTAKE, seq));
    else if (!this.#tombstones.update(callId, (t) => ({ ...t, intake: takeIn(t.intake, seq) }))) {
      this.#early.takeIn(callId, seq);
    }
  }

  #now(): string {
    return this.#times.iso(this.#clock.now());
  }
}

function toMachineEvent(
  envelope: Exclude<CallEnvelope, { type: 'call.incoming' }>,
  now: number,
  redelivered: boolean,
): CallEvent {
  switch (envelope.type) {
    case 'call.reject':
      return {
        type: 'call.reject',
        now,
        reason: envelope.reason,
        callbackUri: envelope.callbackUri,
        ...(redelivered && { redelivered }),
      };
    case 'call.answered':
      return { type: 'call.answered', now };
    case 'call.terminated': {
      const { code, subcode, message } = envelope;
      return { type: 'call.terminated', now, code, subcode, message };
    }
  }
}
