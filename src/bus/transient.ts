import { setTimeout as sleep } from 'node:timers/promises';

/**
 * JetStream is there but cannot answer yet: a cluster still electing a
 * leader for the stream or the bucket just made, a node that has not caught
 * up, a request that timed out, or another instance making the same stream
 * at the same moment. Anything else (too little storage, a setting
 * refused) is for the operator.
 */
export function isTransient(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return TRANSIENT.test(message);
}

const TRANSIENT =
  /no responders|jetstream is not enabled|temporarily unavailable|timeout|no suitable peers|leader|stream not found|consumer not found|already in use/i;

/**
 * Run `attempt` until it succeeds, trying again after a transient failure
 * (see {@link isTransient}) for up to `timeoutMs`, 200 ms apart at first and
 * up to 2 s apart; any other failure, or the last one, is thrown.
 */
export async function whileTransient<T>(attempt: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let wait = 200; ; wait = Math.min(2_000, wait * 2)) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error) || Date.now() + wait > until) throw error;
      await sleep(wait);
    }
  }
}
