import type { CallContext, CallStateName } from '../../machines/types.js';
import type { LifecycleRecord } from '../contract/records.js';

/** The facts a record repeats about the reject, when there was one. */
export interface RejectFacts {
  readonly reason: CallContext['reason'];
  readonly attempts: number;
}

/**
 * ISO-8601 text of the runtime's times: records made in the same millisecond
 * share one string.
 */
export class Timestamps {
  #ms = Number.NaN;
  #text = '';

  iso(ms: number): string {
    if (ms !== this.#ms) {
      this.#ms = ms;
      this.#text = new Date(ms).toISOString();
    }
    return this.#text;
  }
}

/** The record of a call entering `state`. */
export function transitionRecord(
  context: CallContext,
  state: CallStateName,
  previous: CallStateName | null,
  at: string,
): LifecycleRecord {
  return {
    callId: context.callId,
    state,
    previous,
    at,
    ...(context.reason !== null && { reason: context.reason, attempts: context.attempts }),
    ...(context.error !== null &&
      (state === 'failed' || state === 'ended') && { error: context.error }),
  };
}

/** The record of a valid command that could not apply: the state is unchanged. */
export function refusalRecord(
  callId: string,
  state: CallStateName,
  refused: { readonly type: string; readonly why: string },
  at: string,
  facts: RejectFacts,
): LifecycleRecord {
  return {
    callId,
    state,
    previous: state,
    at,
    ...(facts.reason !== null && { reason: facts.reason, attempts: facts.attempts }),
    error: `${refused.type} refused: ${refused.why}`,
    refused: { type: refused.type, why: refused.why },
  };
}
