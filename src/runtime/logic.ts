import { fromPromise } from 'xstate';
import { callMachine } from '../../machines/call.machine.js';
import { stateNameOf } from '../../machines/states.js';
import type {
  CallContext,
  CallStateName,
  RejectOutcome,
  RejectRequest,
} from '../../machines/types.js';
import type { Clock } from './clock.js';
import type { CallControl } from './ports.js';

/** What the machine's named actions tell the host, as plain facts. */
export interface LogicEvents {
  /** The call entered `state`, leaving `previous` (`null` for its first state). */
  entered(context: CallContext, state: CallStateName, previous: CallStateName | null): void;
  /** A valid command could not apply in `state`. */
  refused(context: CallContext, state: CallStateName, type: string, why: string): void;
  /** A back-off began: the next attempt is due at `context.retryAt`. */
  backingOff(context: CallContext): void;
}

/** Reject requests started and not yet settled. */
export class RequestsInFlight {
  count = 0;

  async track<T>(request: Promise<T>): Promise<T> {
    this.count++;
    try {
      return await request;
    } finally {
      this.count--;
    }
  }
}

export interface CallLogicDeps {
  readonly control: CallControl;
  readonly clock: Clock;
  readonly events: LogicEvents;
  readonly requests: RequestsInFlight;
}

/**
 * The call machine with the host's effects: the one `provide()`. The reject
 * request goes to `control` and its outcome is stamped with the host's time;
 * the records and the back-off are reported to `events`.
 */
export function provideCallLogic(deps: CallLogicDeps) {
  const { control, clock, events, requests } = deps;
  return callMachine.provide({
    actors: {
      rejectCall: fromPromise<RejectOutcome, RejectRequest>(async ({ input, signal }) => {
        const outcome = await requests.track(control.reject(input, signal));
        return { ...outcome, at: clock.now() };
      }),
    },
    actions: {
      publishLifecycle: ({ context, self }, { state }) => {
        // Actions run before xstate commits the step, so `self` still shows
        // the state being left; `ringing` is only ever entered first.
        const previous = state === 'ringing' ? null : stateNameOf(self.getSnapshot().value);
        events.entered(context, state, previous);
      },
      publishRefusal: ({ context, event, self }, { why }) => {
        events.refused(context, stateNameOf(self.getSnapshot().value), event.type, why);
      },
      scheduleRetry: ({ context }) => events.backingOff(context),
    },
  });
}

export type CallLogic = ReturnType<typeof provideCallLogic>;
