import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { exchange } from '../../src/graph/exchange.js';

/**
 * A dispatcher that starts writing a request only once `busyMs` of CPU
 * have passed inside one callback: the event loop is busy, so the request's
 * own timer cannot have fired yet when undici is about to write it.
 */
function busyDispatcher(busyMs: number) {
  const seen: string[] = [];
  const dispatcher = {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
      setTimeout(() => {
        const until = Date.now() + busyMs;
        while (Date.now() < until) {
          // the event loop is stuck here
        }
        const controller = {
          abort: (reason: Error) => seen.push(`aborted: ${reason.message}`),
          pause: () => {},
          resume: () => {},
          aborted: false,
          paused: false,
          reason: null,
        } as unknown as Dispatcher.DispatchController;
        handler.onRequestStart?.(controller, {});
        if (!seen.length) seen.push('written');
      }, 0);
      return true;
    },
  } as unknown as Dispatcher;
  return { dispatcher, seen };
}

describe('the deadline at the socket', () => {
  it('does not write a request whose deadline passed while the event loop was busy, before its timer fired', async () => {
    const { dispatcher, seen } = busyDispatcher(80);
    const deadline = Date.now() + 30;
    const ending = await exchange(
      dispatcher,
      { method: 'POST', path: '/reject' },
      30,
      new AbortController().signal,
      { at: deadline, now: Date.now },
    );
    expect(ending).toEqual({ kind: 'timeout', written: false });
    expect(seen).toEqual(['aborted: its deadline passed before it could be written']);
  });

  it('writes it when the deadline has not passed', async () => {
    const { dispatcher, seen } = busyDispatcher(5);
    const done = exchange(
      dispatcher,
      { method: 'POST', path: '/reject' },
      200,
      new AbortController().signal,
      { at: Date.now() + 200, now: Date.now },
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual(['written']);
    expect(await done).toEqual({ kind: 'timeout', written: true });
  });
});
