import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { RejectRequest } from '../../machines/types.js';

/** A pino logger at `trace` whose output the test can read back. */
export function captureLog() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  const log = pino({ level: 'trace' }, stream);
  return {
    log,
    text: () => text,
    entries: (): Array<Record<string, unknown>> =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

/** A reject request for a fresh call, due `windowMs` from now. */
export function rejectRequest(
  overrides: Partial<RejectRequest> & { windowMs?: number } = {},
): RejectRequest {
  const { windowMs = 5_000, ...rest } = overrides;
  return {
    callId: randomUUID(),
    reason: 'busy',
    callbackUri: null,
    attempt: 1,
    deadline: Date.now() + windowMs,
    remainingMs: windowMs,
    ...rest,
  };
}

/** A signal nobody aborts. */
export function openSignal(): AbortSignal {
  return new AbortController().signal;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
