/**
 * The Graph emulator in a process of its own, steered by the bench over IPC
 * (`fork`): on a 2-core machine the service should not share its event loop
 * with the emulator nor with the driver. Every request is answered from
 * `createGraphEmulator`; times are reported as `timeOrigin + receivedPerf`
 * (sub-millisecond, comparable across processes after the bench's offset
 * calibration).
 */
import { createGraphEmulator, type FaultRule } from '../../src/tools/emulator/emulator.js';

export type EmulatorOp =
  | { op: 'now' }
  | { op: 'reset' }
  | { op: 'setFault'; rule: FaultRule }
  | { op: 'clearFaults' }
  | { op: 'release' }
  | { op: 'count' }
  | { op: 'collect'; from: number };

export interface EmulatorCount {
  readonly requests: number;
  readonly held: number;
  readonly byStatus: Record<string, number>;
}

/** Records from index `from` on, as parallel arrays (cheap to send). */
export interface EmulatorCollected {
  readonly callIds: string[];
  /** `timeOrigin + receivedPerf` of each, in the emulator's clock (ms). */
  readonly receivedAbs: number[];
  readonly statuses: Array<number | null>;
}

const send = (message: unknown) => {
  process.send?.(message);
};

if (!process.send) {
  process.stderr.write('emulator-child: run me with child_process.fork (IPC)\n');
  process.exit(2);
}

const emulator = await createGraphEmulator({ host: '127.0.0.1', port: 0 });
const origin = performance.timeOrigin;

function run(message: EmulatorOp): unknown {
  switch (message.op) {
    case 'now':
      return origin + performance.now();
    case 'reset':
      emulator.reset();
      return null;
    case 'setFault':
      emulator.setFault(message.rule);
      return null;
    case 'clearFaults':
      emulator.clearFaults();
      return null;
    case 'release':
      return emulator.release();
    case 'count': {
      const stats = emulator.stats();
      return { requests: stats.requests, held: stats.held, byStatus: stats.byStatus };
    }
    case 'collect': {
      const records = emulator.received().slice(message.from);
      const collected: EmulatorCollected = {
        callIds: records.map((r) => r.callId),
        receivedAbs: records.map((r) => origin + r.receivedPerf),
        statuses: records.map((r) => r.status),
      };
      return collected;
    }
  }
}

process.on('message', (raw: { id: number } & EmulatorOp) => {
  try {
    send({ id: raw.id, result: run(raw) });
  } catch (error) {
    send({ id: raw.id, error: String(error) });
  }
});
process.on('disconnect', () => {
  void emulator.close().then(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void emulator.close().then(() => process.exit(0));
});
send({ ready: true, url: emulator.url });
