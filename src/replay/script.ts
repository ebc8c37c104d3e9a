import { z } from 'zod';
import type { RejectRequest } from '../../machines/types.js';
import { describeIssues } from '../contract/errors.js';
import { AtField, CallIdField, fieldError } from '../contract/events.js';
import type { CallRuntime } from '../runtime/call-runtime.js';
import type { CallControl } from '../runtime/ports.js';

/**
 * A replay line that scripts the outcome of one reject request:
 * `{"type":"graph.result","callId","at","status","retryAfterMs"?}`. Several
 * lines for one call queue up, one per request, in order; with none left a
 * request succeeds with 202. Beyond the contract: `status` may be `"timeout"`
 * (sent, no answer: outcome unknown) or `"network"` (never reached Graph),
 * `code`/`message` fill Graph's error body, and `latencyMs` makes the request
 * take that long on the simulated clock.
 */
export const GraphResult = z.object({
  type: z.literal('graph.result'),
  callId: CallIdField,
  at: AtField,
  status: z.union(
    [z.number().int().min(100).max(599), z.literal('timeout'), z.literal('network')],
    { error: fieldError('must be an HTTP status (100-599), "timeout" or "network"') },
  ),
  retryAfterMs: z.number({ error: 'must be a number of ms' }).int().nonnegative().optional(),
  latencyMs: z.number({ error: 'must be a number of ms' }).int().nonnegative().optional(),
  code: z.string({ error: 'must be a string' }).optional(),
  message: z.string({ error: 'must be a string' }).optional(),
});
export type GraphResult = z.infer<typeof GraphResult>;

export function parseGraphResult(
  value: unknown,
): { ok: true; value: GraphResult } | { ok: false; error: string } {
  const result = GraphResult.safeParse(value);
  return result.success
    ? { ok: true, value: result.data }
    : { ok: false, error: describeIssues(result.error) };
}

/** One reject request as the scripted Graph saw it. */
export interface ScriptedRequest {
  readonly callId: string;
  readonly attempt: number;
  readonly reason: string;
  readonly startedAt: number;
  readonly deadline: number;
  readonly status: number | 'timeout' | 'network';
  aborted: boolean;
  /** Position among all deliveries and requests of the replay. */
  readonly step: number;
}

/**
 * A Graph stand-in for replays: answers each request from the script, after
 * its `latencyMs` on the runtime's scheduler (the simulated clock).
 */
export class ScriptedGraph implements CallControl {
  readonly requests: ScriptedRequest[] = [];
  private readonly queues = new Map<string, GraphResult[]>();
  private runtime: CallRuntime | undefined;
  private ready = 0;

  constructor(
    private readonly now: () => number,
    private readonly step: () => number,
  ) {}

  attach(runtime: CallRuntime): void {
    this.runtime = runtime;
  }

  hasReady(): boolean {
    return this.ready > 0;
  }

  /** True when an answer was handed back since the last call: flush microtasks so the actor sees it. */
  takeReady(): boolean {
    const was = this.ready > 0;
    this.ready = 0;
    return was;
  }

  enqueue(result: GraphResult): void {
    const queue = this.queues.get(result.callId);
    if (queue) queue.push(result);
    else this.queues.set(result.callId, [result]);
  }

  reject(request: RejectRequest, signal: AbortSignal) {
    const script = this.queues.get(request.callId)?.shift();
    const startedAt = this.now();
    const record: ScriptedRequest = {
      callId: request.callId,
      attempt: request.attempt,
      reason: request.reason,
      startedAt,
      deadline: request.deadline,
      status: script?.status ?? 202,
      aborted: false,
      step: this.step(),
    };
    this.requests.push(record);
    signal.addEventListener('abort', () => {
      record.aborted = true;
    });
    const outcome = {
      status: typeof record.status === 'number' ? record.status : null,
      maybeDelivered: record.status === 'timeout',
      code: script?.code,
      message: script?.message ?? (typeof record.status === 'string' ? record.status : undefined),
      retryAfterMs: script?.retryAfterMs,
    };
    const latency = script?.latencyMs ?? 0;
    if (latency === 0 || !this.runtime) {
      this.ready++;
      return Promise.resolve(outcome);
    }
    const scheduler = this.runtime.scheduler;
    return new Promise<typeof outcome>((resolve) => {
      scheduler.schedule(startedAt + latency, 'callback', () => {
        this.ready++;
        resolve(outcome);
      });
    });
  }
}
