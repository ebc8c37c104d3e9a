import type { CallEnvelope } from '../contract/events.js';
import { LIMITS } from '../contract/limits.js';
import { type Intake, NO_INTAKE, takeIn } from './intake.js';

interface Held {
  readonly envelope: CallEnvelope;
  readonly expiresAt: number;
  /** Its size as stored (JSON). */
  readonly bytes: number;
}

/**
 * Events for calls not seen yet, kept until their `call.incoming` arrives or
 * the window of a call with that id could no longer be open (the event's
 * `at`, clamped to now, plus the answer window). The only place early events
 * live: the host stores what {@link heldFor} gives, and restores it here.
 */
export class EarlyEvents {
  readonly #windowMs: number;
  readonly #held = new Map<string, Held[]>();
  /** The messages that brought each call's held events. */
  readonly #intakes = new Map<string, Intake>();

  constructor(windowMs: number) {
    this.#windowMs = windowMs;
  }

  has(callId: string): boolean {
    return this.#held.has(callId);
  }

  /**
   * Keep an event; returns when it expires (epoch ms), or `undefined` when
   * the call holds as many events, or as many bytes, as it may
   * ({@link LIMITS}): a store's value and a NATS message stay bounded.
   */
  hold(envelope: CallEnvelope, now: number): number | undefined {
    const list = this.#held.get(envelope.callId) ?? [];
    const bytes = Buffer.byteLength(JSON.stringify(envelope));
    const total = list.reduce((sum, item) => sum + item.bytes, bytes);
    if (list.length >= LIMITS.heldEvents || total > LIMITS.heldBytes) return undefined;
    const expiresAt = Math.min(envelope.at, now) + this.#windowMs;
    list.push({ envelope, expiresAt, bytes });
    this.#held.set(envelope.callId, list);
    return expiresAt;
  }

  /** The events held for a call, in arrival order. */
  heldFor(callId: string): readonly CallEnvelope[] | undefined {
    return this.#held.get(callId)?.map((item) => item.envelope);
  }

  intakeOf(callId: string): Intake {
    return this.#intakes.get(callId) ?? NO_INTAKE;
  }

  /** The message with sequence `seq` brought events for the call. */
  takeIn(callId: string, seq: number): void {
    if (this.#held.has(callId)) this.#intakes.set(callId, takeIn(this.intakeOf(callId), seq));
  }

  /** Held again after a restart, with the messages that brought them. */
  restoreIntake(callId: string, intake: Intake): void {
    if (this.#held.has(callId)) this.#intakes.set(callId, intake);
  }

  /** The call arrived: its events still inside their window, in order, and the messages that brought them; none are kept. */
  take(callId: string, now: number): { events: CallEnvelope[]; intake: Intake } {
    const list = this.#held.get(callId) ?? [];
    const intake = this.intakeOf(callId);
    this.#held.delete(callId);
    this.#intakes.delete(callId);
    const events = list.filter((item) => item.expiresAt > now).map((item) => item.envelope);
    return { events, intake };
  }

  /** Drop the call's events whose window has passed; returns them. */
  expire(callId: string, now: number): CallEnvelope[] {
    const list = this.#held.get(callId);
    if (!list) return [];
    const kept = list.filter((item) => item.expiresAt > now);
    if (kept.length > 0) this.#held.set(callId, kept);
    else {
      this.#held.delete(callId);
      this.#intakes.delete(callId);
    }
    return list.filter((item) => item.expiresAt <= now).map((item) => item.envelope);
  }

  clear(): void {
    this.#held.clear();
    this.#intakes.clear();
  }
}
