import { setTimeout as sleep } from 'node:timers/promises';
import type { GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { answered, type CallBus, incoming, isFinalRecord, newCallId, reject } from './call-bus.js';
import { eventually } from './eventually.js';

/** The final state a call's events call for. */
export type Kind = 'rejected' | 'answered' | 'timedOut';

export interface LoadCall {
  readonly callId: string;
  readonly kind: Kind;
}

const KINDS: readonly Kind[] = ['rejected', 'rejected', 'rejected', 'answered', 'timedOut'];

/**
 * Publish `count` calls, one every `gapMs`: three of five rejected, one
 * answered, one left to time out. `calls` fills as they go out.
 */
export function publishLoad(
  bus: CallBus,
  options: { count: number; gapMs: number },
): { calls: LoadCall[]; done: Promise<void> } {
  const calls: LoadCall[] = [];
  const done = (async () => {
    for (let i = 0; i < options.count; i++) {
      const callId = newCallId();
      const kind = KINDS[i % KINDS.length] as Kind;
      calls.push({ callId, kind });
      await bus.send(incoming(callId));
      if (kind === 'rejected') await bus.send(reject(callId));
      if (kind === 'answered') await bus.send(answered(callId));
      await sleep(options.gapMs);
    }
  })();
  return { calls, done };
}

/**
 * Wait until every call is final, then list what is wrong: a call whose
 * final states are not exactly the one its events call for, a reject
 * Graph accepted twice or never, a reject request for an answered call.
 */
export async function outcomeProblems(
  bus: CallBus,
  graph: GraphEmulator,
  calls: readonly LoadCall[],
  timeoutMs: number,
): Promise<string[]> {
  const open = () => calls.filter(({ callId }) => !bus.recordsOf(callId).some(isFinalRecord));
  await eventually(() => open().length === 0, { timeout: timeoutMs }).catch(() => {});
  const problems = open().map(
    (c) => `${c.callId} (${c.kind}) not final: ${bus.recordsOf(c.callId).map((r) => r.state)}`,
  );
  const requested = new Map<string, number>();
  for (const request of graph.received()) {
    requested.set(request.callId, (requested.get(request.callId) ?? 0) + 1);
  }
  for (const { callId, kind } of calls) {
    const finals = new Set(
      bus
        .recordsOf(callId)
        .filter(isFinalRecord)
        .map((r) => r.state),
    );
    if (finals.size > 1 || (finals.size === 1 && !finals.has(kind))) {
      problems.push(`${callId} (${kind}) ended ${[...finals].join(' and ')}`);
    }
    const accepted = graph.acceptedCount(callId);
    if (kind === 'rejected' && accepted !== 1) {
      problems.push(`${callId}: Graph accepted ${accepted} rejects`);
    }
    if (kind !== 'rejected' && (requested.get(callId) ?? 0) > 0) {
      problems.push(`${callId} (${kind}): a reject was sent`);
    }
  }
  return problems;
}
