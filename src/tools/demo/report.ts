import type { ScheduleResult } from './schedule.js';
import { type DemoKind, FINAL_STATES, type FinalState } from './traffic.js';

/** What became of one planned call. */
export interface Outcome {
  readonly callId: string;
  readonly kind: DemoKind;
  readonly expected: FinalState;
  /** The final state of its lifecycle records; undefined when none arrived. */
  readonly actual?: string;
  /** `call.reject` published → `rejected` record received (ms). */
  readonly rejectLatencyMs?: number;
  /** `call.reject` published → first reject request at the Graph emulator (ms). */
  readonly graphLatencyMs?: number;
}

export interface ReportInput {
  readonly outcomes: readonly Outcome[];
  /** Second `call.reject`s the service refused, and how many were sent. */
  readonly refusedRejects: number;
  readonly plannedRefusals: number;
  /** Repeated `call.incoming`s JetStream dropped by `Nats-Msg-Id`, and how many were sent. */
  readonly duplicatesDropped: number;
  readonly plannedDrops: number;
  /** Reject requests the Graph emulator answered, by status. */
  readonly graphByStatus: Readonly<Record<string, number>>;
  readonly windowMs: number;
  readonly traffic: TrafficFigures;
  /** Calls decided twice: two different final records, or two rejects Graph accepted. */
  readonly decidedTwice: number;
  /** `--replicas`: the instances, and what happened to one of them halfway. */
  readonly replicas?: { readonly count: number; readonly killed: string | undefined };
}

/** What the traffic generator was asked for, and what it achieved, and the lag over which new calls wait (ms). */
export type TrafficFigures = Omit<ScheduleResult, 'started'> & { readonly maxLagMs: number };

export interface Latency {
  readonly count: number;
  readonly p50: number | undefined;
  readonly p99: number | undefined;
}

export interface Summary {
  readonly planned: Record<FinalState, number>;
  readonly actual: Record<FinalState, number>;
  /** Planned calls with no final record. */
  readonly lost: number;
  /** Calls that ended, but not in the planned state. */
  readonly different: number;
  readonly rejectLatency: Latency;
  /** Rejected calls whose first request was accepted (no Graph fault). */
  readonly firstTryLatency: Latency;
  readonly graphLatency: Latency;
  readonly serviceLag: Latency & { readonly max: number | undefined };
  readonly ok: boolean;
}

/**
 * The nearest-rank percentile (`p` in 0–100) of some numbers; undefined for none.
 *
 * @example
 * percentile([5, 1, 3, 2, 4], 50) // 3
 */
export function percentile(values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function latency(values: Array<number | undefined>): Latency {
  const present = values.filter((v): v is number => v !== undefined);
  return {
    count: present.length,
    p50: percentile(present, 50),
    p99: percentile(present, 99),
  };
}

const FIRST_TRY_KINDS: ReadonlySet<DemoKind> = new Set(['rejected', 'duplicated']);

export function summarize(input: ReportInput): Summary {
  const zero = () =>
    Object.fromEntries(FINAL_STATES.map((s) => [s, 0])) as Record<FinalState, number>;
  const planned = zero();
  const actual = zero();
  let lost = 0;
  let different = 0;
  for (const outcome of input.outcomes) {
    planned[outcome.expected]++;
    if (outcome.actual === undefined) lost++;
    else {
      if (outcome.actual in actual) actual[outcome.actual as FinalState]++;
      if (outcome.actual !== outcome.expected) different++;
    }
  }
  const rejected = input.outcomes.filter((o) => o.actual === 'rejected');
  const firstTry = rejected.filter((o) => FIRST_TRY_KINDS.has(o.kind));
  return {
    planned,
    actual,
    lost,
    different,
    rejectLatency: latency(rejected.map((o) => o.rejectLatencyMs)),
    firstTryLatency: latency(firstTry.map((o) => o.rejectLatencyMs)),
    graphLatency: latency(firstTry.map((o) => o.graphLatencyMs)),
    serviceLag: {
      ...latency([...input.traffic.lagSamples]),
      max: percentile(input.traffic.lagSamples, 100),
    },
    ok: lost === 0 && different === 0 && input.decidedTwice === 0,
  };
}

const ms = (value: number | undefined) => (value === undefined ? '–' : `${Math.round(value)} ms`);
const row = (cells: string[], widths: number[]) =>
  cells
    .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
    .join('  ');
const latencyLine = (label: string, l: Latency) =>
  `${label.padEnd(44)} p50 ${ms(l.p50).padStart(8)}   p99 ${ms(l.p99).padStart(8)}   (${l.count} calls)`;
const rate = (value: number | undefined) =>
  value === undefined ? '–' : `${value.toFixed(1)} calls/s`;

/**
 * Asked and achieved: the pace of the traffic, and how far behind the
 * service was. `failover`: an instance was killed, and the others' takeover
 * held new calls back.
 */
function trafficLines(
  t: TrafficFigures,
  lag: Summary['serviceLag'],
  calls: number,
  failover: boolean,
): string[] {
  const label = (text: string) => text.padEnd(44);
  const lines = [
    `${label('offered rate (calls planned a second)')} ${rate(t.offeredPerSecond).padStart(16)}`,
    `${label('sustained rate (calls started a second)')} ${rate(t.sustainedPerSecond).padStart(16)}` +
      `   (${calls} calls, all sent in ${(t.elapsedMs / 1000).toFixed(1)} s)`,
    `${label(`time held back (service lag over ${t.maxLagMs} ms)`)} ${`${(t.heldBackMs / 1000).toFixed(1)} s`.padStart(16)}` +
      `   (latest start ${ms(t.maxLateMs)} behind plan)`,
    `${label('service lag (oldest event not acted on)')} p50 ${ms(lag.p50).padStart(8)}` +
      `   p99 ${ms(lag.p99).padStart(8)}   max ${ms(lag.max)}`,
  ];
  const offered = t.offeredPerSecond;
  if (offered !== undefined && (t.sustainedPerSecond ?? 0) < offered * 0.95) {
    lines.push(
      failover
        ? 'New calls waited while the other instances took over the killed one’s calls.'
        : `The service did not keep up with ${offered.toFixed(0)} calls/s here: new calls waited for it, ` +
            'and the latencies below are those of the sustained rate. Try a lower --rate.',
    );
  }
  return lines;
}

/** The demo's closing table, as text. */
export function renderReport(input: ReportInput, summary = summarize(input)): string {
  const widths = [12, 8, 8];
  const lines = [row(['final state', 'planned', 'actual'], widths), '-'.repeat(32)];
  for (const state of FINAL_STATES) {
    lines.push(row([state, String(summary.planned[state]), String(summary.actual[state])], widths));
  }
  const total = (r: Record<FinalState, number>) =>
    String(Object.values(r).reduce((a, b) => a + b, 0));
  lines.push(
    '-'.repeat(32),
    row(['total', total(summary.planned), total(summary.actual)], widths),
    '',
  );
  lines.push(
    ...trafficLines(
      input.traffic,
      summary.serviceLag,
      input.outcomes.length,
      input.replicas?.killed !== undefined,
    ),
    '',
    latencyLine('reject latency (published → rejected record)', summary.rejectLatency),
    latencyLine('  first request accepted (no Graph faults)', summary.firstTryLatency),
    latencyLine('  published → request at the Graph emulator', summary.graphLatency),
    '',
    `duplicates: ${input.refusedRejects} second rejects refused (of ${input.plannedRefusals}), ` +
      `${input.duplicatesDropped} repeated incoming dropped by JetStream (of ${input.plannedDrops})`,
    `Graph emulator answers: ${
      Object.entries(input.graphByStatus)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([status, n]) => `${status}: ${n}`)
        .join(', ') || 'none'
    }`,
    `answer window: ${input.windowMs} ms (ANSWER_TIMEOUT_MS, short so timed-out calls finish quickly)`,
    '',
    ...(input.replicas
      ? [
          `instances: ${input.replicas.count} identical replicas` +
            (input.replicas.killed ? `; ${input.replicas.killed}` : ''),
        ]
      : []),
    `calls lost: ${summary.lost}`,
    `calls decided twice: ${input.decidedTwice}`,
    `calls ended in another state than planned: ${summary.different}`,
  );
  const odd = input.outcomes.filter((o) => o.actual !== o.expected);
  for (const o of odd.slice(0, 10)) {
    lines.push(
      `  ${o.callId} (${o.kind}): planned ${o.expected}, got ${o.actual ?? 'no final record'}`,
    );
  }
  if (odd.length > 10) lines.push(`  … and ${odd.length - 10} more`);
  if (summary.different > 0 && summary.lost === 0) {
    lines.push(
      `On a busy machine the ${input.windowMs} ms answer window can close while events queue: try a lower --rate.`,
    );
  }
  return `${lines.join('\n')}\n`;
}
