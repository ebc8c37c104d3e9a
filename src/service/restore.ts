import type { LifecycleRecord } from '../contract/records.js';
import type { Log } from '../log.js';
import { isFinalStored } from '../persistence/codec.js';
import type { Loaded, SnapshotStore, StoredCall } from '../persistence/store.js';
import type { CallRuntime } from '../runtime/call-runtime.js';

export interface Restored {
  /** Live calls and calls with held events, brought back into the runtime. */
  readonly live: number;
  /** Final calls, remembered by a hash of their id. */
  readonly final: number;
  /** Stored values this service cannot use, by call id. */
  readonly unreadable: ReadonlyMap<string, Loaded & { ok: false }>;
  /**
   * The records of values no message caused, written after the last
   * publication mark, oldest first: the process may have died before they
   * went out, and no message will come back to send them.
   */
  readonly unsent: readonly LifecycleRecord[];
}

/**
 * Bring back every stored call: live ones into the runtime (earliest
 * deadline first, their requests in flight at the crash left for
 * `resendDeferred`), final ones as hashes, events held for calls not seen
 * yet held again. A value that cannot be used (a snapshot of another machine
 * version) is left in the bucket and returned, never restored.
 */
export async function restoreCalls<M>(
  store: SnapshotStore,
  runtime: CallRuntime<M>,
  log: Log,
): Promise<Restored> {
  const loaded = await store.loadAll();
  const mark = await store.publishedMark();
  const live: Array<[string, StoredCall]> = [];
  const unreadable = new Map<string, Loaded & { ok: false }>();
  const unsent: StoredCall[] = [];
  let final = 0;
  for (const [callId, value] of loaded) {
    if (value.ok && value.call.unprompted && (value.call.writtenAt ?? 0) > mark)
      unsent.push(value.call);
    if (!value.ok) unreadable.set(callId, value);
    else if (!isFinalStored(value.call)) live.push([callId, value.call]);
    else {
      runtime.rememberStored(callId);
      final++;
    }
  }
  // Earliest deadline first: requests to send again go out in this order.
  live.sort(([, a], [, b]) => deadlineOf(a) - deadlineOf(b));
  for (const [callId, call] of live) {
    try {
      if ('snapshot' in call) {
        runtime.restore(call.snapshot, { deferResend: true, intake: call.intake });
      } else runtime.restoreHeld(callId, call.held, call.intake);
    } catch (error) {
      log.error({ callId, err: error }, 'could not restore a stored call');
    }
  }
  unsent.sort((a, b) => (a.writtenAt ?? 0) - (b.writtenAt ?? 0));
  return {
    live: live.length,
    final,
    unreadable,
    unsent: unsent.flatMap((call) => call.records ?? []),
  };
}

function deadlineOf(call: StoredCall): number {
  return 'snapshot' in call ? call.snapshot.context.deadline : Number.POSITIVE_INFINITY;
}
