import type { CallRuntime } from '../runtime/call-runtime.js';

/** Requests sent again after a restart: at most this many in flight, this many started per turn. */
const IN_FLIGHT = 256;
const SLICE = 64;

/**
 * Send again, earliest deadline first, the requests that were in flight at
 * the last stop, a slice per turn and never more than {@link IN_FLIGHT} at
 * once; resolves with how many there were. Meanwhile the service is ready
 * and consuming: a call reached by an event or timer first is recovered on
 * the spot. Requests queued behind thousands of others in the HTTP pool
 * would spend their time left in the queue; kept to a bounded number, they
 * spend it at Graph.
 */
export async function resendRecovered<M>(
  runtime: CallRuntime<M>,
  signal: AbortSignal,
): Promise<number> {
  let left = runtime.resendDeferred(0);
  const total = left;
  while (left > 0 && !signal.aborted) {
    const room = IN_FLIGHT - runtime.inFlight;
    if (room > 0) left = runtime.resendDeferred(Math.min(room, SLICE));
    await new Promise((resolve) => (room > 0 ? setImmediate(resolve) : setTimeout(resolve, 1)));
  }
  return total;
}
