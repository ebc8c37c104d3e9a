import type { JetStreamClient } from '@nats-io/jetstream';
import { abs, sleep } from './procs.js';

/**
 * The load driver: publishes `call.incoming` and `call.reject` on
 * `<prefix>.events.<id>` with JetStream publish, pipelined (up to `window`
 * messages waiting for their PubAck), and notes when each reject was handed
 * to the client (`timeOrigin + performance.now()`).
 */
export interface Driver {
  /** Reject publish time per call id (epoch ms, sub-ms precision). */
  readonly rejectAt: Map<string, number>;
  /** When the first message of a run was published. */
  readonly firstAt: () => number;
  /** Publish failures (no PubAck). */
  readonly failures: () => number;
  /** `n` calls (incoming + reject, or incoming only) as fast as the window allows. */
  burst(ids: string[], options?: { incomingOnly?: boolean }): Promise<void>;
  /** `ids.length` calls at `perSecond`, incoming and reject back to back. */
  paced(ids: string[], perSecond: number): Promise<void>;
  /** Wait for every PubAck. */
  drain(): Promise<void>;
}

export function createDriver(js: JetStreamClient, prefix: string, window = 4_000): Driver {
  const rejectAt = new Map<string, number>();
  let outstanding = 0;
  let failed = 0;
  let first = Number.NaN;
  let wake: (() => void) | undefined;
  let idle: (() => void) | undefined;

  const settled = () => {
    outstanding--;
    if (wake && outstanding < window) {
      const w = wake;
      wake = undefined;
      w();
    }
    if (idle && outstanding === 0) {
      const i = idle;
      idle = undefined;
      i();
    }
  };
  const send = (subject: string, body: string) => {
    outstanding++;
    js.publish(subject, body).then(settled, () => {
      failed++;
      settled();
    });
  };
  const room = async () => {
    while (outstanding >= window) await new Promise<void>((resolve) => (wake = resolve));
  };
  const publishCall = (callId: string, incomingOnly: boolean) => {
    const subject = `${prefix}.events.${callId}`;
    const at = new Date().toISOString();
    if (Number.isNaN(first)) first = abs();
    send(subject, `{"type":"call.incoming","callId":"${callId}","at":"${at}"}`);
    if (incomingOnly) return;
    rejectAt.set(callId, abs());
    send(subject, `{"type":"call.reject","callId":"${callId}","at":"${at}","reason":"busy"}`);
  };

  return {
    rejectAt,
    firstAt: () => first,
    failures: () => failed,
    async burst(ids, options = {}) {
      for (const id of ids) {
        if (outstanding >= window) await room();
        publishCall(id, options.incomingOnly === true);
      }
    },
    async paced(ids, perSecond) {
      const start = performance.now();
      let i = 0;
      while (i < ids.length) {
        const due = Math.min(
          ids.length,
          Math.floor(((performance.now() - start) * perSecond) / 1000) + 1,
        );
        while (i < due) {
          const id = ids[i++];
          if (id !== undefined) publishCall(id, false);
        }
        await sleep(1);
      }
    },
    async drain() {
      while (outstanding > 0) await new Promise<void>((resolve) => (idle = resolve));
    },
  };
}
