import { statSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { STATE_NAMES } from '../../machines/states.js';
import { type ReplayReport, replayFile } from '../replay/replay.js';

const DEFAULT_WINDOW_MS = 15_000;
/** Below this size a replay is over before a bar would help. */
const PROGRESS_MIN_BYTES = 1 << 20;

function windowFrom(option: number | undefined): number {
  if (option !== undefined) return option;
  const env = process.env.ANSWER_TIMEOUT_MS;
  if (env === undefined || env === '') return DEFAULT_WINDOW_MS;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 100) {
    throw new Error(
      `ANSWER_TIMEOUT_MS: must be a whole number of milliseconds ≥ 100 (got "${env}")`,
    );
  }
  return n;
}

/** `callgate replay FILE [--json]`: prints each call's transitions and final state. */
export async function runReplay(
  file: string,
  options: { json?: boolean; summary?: boolean; answerTimeoutMs?: number },
): Promise<number> {
  let windowMs: number;
  let size: number;
  try {
    windowMs = windowFrom(options.answerTimeoutMs);
    size = statSync(file).size;
  } catch (error) {
    process.stderr.write(`callgate replay: ${(error as Error).message}\n`);
    return 2;
  }
  const bar =
    process.stderr.isTTY && size >= PROGRESS_MIN_BYTES
      ? new SingleBar({
          format: 'replay [{bar}] {percentage}% | {value}/{total} bytes',
          stream: process.stderr,
        })
      : undefined;
  bar?.start(size, 0);
  const report = await replayFile(file, {
    windowMs,
    onInvalid: (record) => process.stderr.write(`invalid ${JSON.stringify(record)}\n`),
    ...(bar && { onProgress: (bytes: number) => bar.update(Math.min(bytes, size)) }),
  });
  bar?.stop();
  process.stdout.write(
    options.json ? `${toJson(report)}\n` : toText(report, { perCall: !options.summary }),
  );
  return 0;
}

function toJson(report: ReplayReport): string {
  return JSON.stringify({ calls: report.calls });
}

function toText(report: ReplayReport, options: { perCall: boolean }): string {
  const lines: string[] = [];
  const counts = new Map<string, number>();
  for (const [callId, call] of Object.entries(report.calls)) {
    counts.set(call.state, (counts.get(call.state) ?? 0) + 1);
    if (!options.perCall) continue;
    lines.push(`${callId}  ${call.state}  attempts=${call.attempts}`);
    for (const t of call.transitions) {
      const change = t.refused
        ? `${t.state}  refused ${t.refused.type}: ${t.refused.why}`
        : `${t.previous ?? '(new)'} → ${t.state}`;
      const extra = [
        t.reason && `reason=${t.reason}`,
        t.error && !t.refused && `error="${t.error}"`,
      ]
        .filter(Boolean)
        .join(' ');
      lines.push(`  ${t.at}  ${change}${extra ? `  ${extra}` : ''}`);
    }
  }
  const total = Object.keys(report.calls).length;
  if (lines.length > 0) lines.push('');
  lines.push('final state   calls');
  for (const state of STATE_NAMES) {
    const n = counts.get(state) ?? 0;
    if (n > 0) lines.push(`${state.padEnd(12)}  ${String(n).padStart(5)}`);
  }
  lines.push(`${'total'.padEnd(12)}  ${String(total).padStart(5)}`);
  lines.push(
    `${report.lines} line(s), ${report.invalid} invalid, ${report.requests.length} reject request(s) to Graph`,
  );
  return `${lines.join('\n')}\n`;
}
