import { isFinalState } from '../../machines/states.js';
import type { LifecycleRecord, RecordFacts } from '../contract/records.js';
import type { Log } from '../log.js';
import type { Metrics } from './metrics.js';

/**
 * Reject latency: from the record of a call entering `rejecting` to its
 * `rejected` record, by the records' own times (the service's clock at each
 * transition). The one definition: the metric and the live page both read it.
 */
export class RejectLatency {
  readonly #since = new Map<string, number>();

  /** The latency (ms) a `rejected` record completes, if any. */
  observe(record: LifecycleRecord): number | undefined {
    if (record.refused) return undefined;
    const { callId, state } = record;
    if (state === 'rejecting') {
      if (record.previous !== 'rejecting') this.#since.set(callId, Date.parse(record.at));
      return undefined;
    }
    if (!isFinalState(state)) return undefined;
    const since = this.#since.get(callId);
    this.#since.delete(callId);
    if (state !== 'rejected' || since === undefined) return undefined;
    return Math.max(0, Date.parse(record.at) - since);
  }
}

/**
 * Logs and metrics for every lifecycle record, then the record and its facts
 * to `onRecord` (the live page).
 */
export function createRecordObserver(options: {
  readonly log: Log;
  readonly metrics: Metrics;
  readonly onRecord?: ((record: LifecycleRecord, facts: RecordFacts) => void) | undefined;
}): (record: LifecycleRecord, deadline: number | undefined) => void {
  const { log, metrics, onRecord } = options;
  const latency = new RejectLatency();
  return (record, deadline) => {
    const { callId, state } = record;
    const rejectLatencyMs = latency.observe(record);
    if (record.refused) {
      metrics.refused.inc({ type: record.refused.type });
      if (log.isLevelEnabled('info')) {
        log.info({ callId, refused: record.refused, state }, 'command refused');
      }
    } else {
      const { previous, attempts, error } = record;
      // Checked first: the line's object is not built for every record when info is off.
      if (log.isLevelEnabled('info')) {
        log.info({ callId, state, previous, attempts, error }, 'call state changed');
      }
      if (isFinalState(state)) {
        metrics.finalCalls.inc({ state });
        if (rejectLatencyMs !== undefined) metrics.rejectLatency.observe(rejectLatencyMs / 1000);
        if (attempts !== undefined) metrics.attempts.observe(attempts);
      }
    }
    onRecord?.(record, { deadline, rejectLatencyMs });
  };
}
