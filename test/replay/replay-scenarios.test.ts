import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { InvalidRecord } from '../../src/contract/records.js';
import { type ReplayReport, replayFile } from '../../src/replay/replay.js';

/**
 * Golden replays: each `test/replay/<file>.jsonl` is replayed with the answer
 * window below, and `{ calls }` must equal `<file>.expected.json`, which is
 * exactly what `callgate replay <file>.jsonl --json --answer-timeout-ms <windowMs>`
 * prints. The expected documents were worked out from the contract and the
 * machine (back-offs from `backoffDelay`), not copied from the engine.
 *
 * All timestamps are on 2026-11-27 from 09:00:00.000Z.
 */

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');

interface Scenario {
  /** `test/replay/<file>.jsonl` and `<file>.expected.json`. */
  readonly file: string;
  /** The answer window (ms). */
  readonly windowMs: number;
  /** What the scenario shows, as a sentence. */
  readonly shows: string;
}

const SCENARIOS: readonly Scenario[] = [
  {
    file: 'reject-accepted',
    windowMs: 15_000,
    shows: 'a reject that Graph answers with 202 ends in rejected after one attempt',
  },
  {
    file: 'retry-after-429-honoured',
    windowMs: 15_000,
    shows: 'a 429 is retried after its Retry-After, or after the back-off when that is longer',
  },
  {
    file: 'retry-5xx-then-accepted',
    windowMs: 15_000,
    shows: 'each of 500, 502, 503 and 504 is retried with back-off until Graph accepts',
  },
  {
    file: 'no-response-then-accepted',
    windowMs: 15_000,
    shows: 'a network error and a time-out are both retried until Graph accepts',
  },
  {
    file: 'retries-run-out-in-window',
    windowMs: 2_000,
    shows:
      'a retry that would start at or after the deadline is not scheduled, and the call fails at once',
  },
  {
    file: 'retries-run-out-max-attempts',
    windowMs: 15_000,
    shows: 'a call fails after the eighth retryable error even with time left in the window',
  },
  {
    file: 'not-found-ended',
    windowMs: 15_000,
    shows: 'a 404 ends the call when no earlier attempt may have reached Graph',
  },
  {
    file: 'timeout-then-not-found-rejected',
    windowMs: 15_000,
    shows: 'a 404 after an attempt that timed out means that attempt went through',
  },
  {
    file: 'graph-refuses-reject-failed',
    windowMs: 15_000,
    shows: "a 403 or a 400 fails the call with Graph's code and message",
  },
  {
    file: 'answered-during-inflight-reject',
    windowMs: 15_000,
    shows: 'an answer while the reject is in flight ends in answered',
  },
  {
    file: 'answered-while-waiting-to-retry',
    windowMs: 15_000,
    shows: 'an answer while a retry is pending ends in answered',
  },
  {
    file: 'refused-after-answered-ended-timedout',
    windowMs: 15_000,
    shows: 'a reject after the call was answered, ended or timed out is refused',
  },
  {
    file: 'refused-after-reject-sent',
    windowMs: 15_000,
    shows:
      'a refusal of a call that went through rejecting carries its reason and attempts like every record from rejecting on',
  },
  {
    file: 'refused-second-reject-while-rejecting',
    windowMs: 15_000,
    shows: 'a second reject while the first is in flight or waiting to retry is refused',
  },
  {
    file: 'reject-at-deadline-refused',
    windowMs: 15_000,
    shows: 'a reject at exactly the deadline finds the call timed out and is refused',
  },
  {
    file: 'events-before-incoming',
    windowMs: 15_000,
    shows: 'events that come before their call.incoming are applied in order when it arrives',
  },
  {
    file: 'held-event-expires',
    windowMs: 15_000,
    shows: 'an event held for an unknown call is dropped once no window could still be open',
  },
  {
    file: 'duplicates-ignored',
    windowMs: 15_000,
    shows: 'a repeated incoming or answered changes nothing and a duplicate reject line is refused',
  },
  {
    file: 'terminated-while-ringing-ended',
    windowMs: 15_000,
    shows: "a hang-up while ringing ends the call with Graph's resultInfo in the error",
  },
  {
    file: 'terminated-during-inflight-reject',
    windowMs: 15_000,
    shows: 'a hang-up during a reject lets a 202 reject the call and otherwise ends it',
  },
  {
    file: 'terminated-in-flight-then-window-closes',
    windowMs: 15_000,
    shows: 'a hang-up during a reject that Graph does not answer before the deadline ends the call',
  },
  {
    file: 'timed-out-no-decision',
    windowMs: 5_000,
    shows: 'a call with no decision times out one window after its incoming',
  },
  {
    file: 'invalid-lines-skipped',
    windowMs: 15_000,
    shows: 'invalid lines are skipped and the other lines replay as if they were not there',
  },
  {
    file: 'reason-case-insensitive',
    windowMs: 15_000,
    shows: 'a reason in any case is recorded in lower case',
  },
  {
    file: 'guid-call-id-spellings',
    windowMs: 15_000,
    shows: 'the spellings of one Graph call id name one call, keyed by its canonical form',
  },
  {
    file: 'incoming-at-earlier-than-clock',
    windowMs: 15_000,
    shows:
      'an incoming whose at is behind the clock gets its deadline from its own at and may time out on arrival',
  },
  {
    file: 'held-events-after-window-closed',
    windowMs: 15_000,
    shows: 'events held for a call whose window closed before it arrived find the call timed out',
  },
  {
    file: 'past-due-deadline-fires-before-next-line',
    windowMs: 15_000,
    shows: 'a past-due deadline fires before the next line, whatever that line says its at is',
  },
  {
    file: 'inflight-reject-outlasts-deadline-failed',
    windowMs: 15_000,
    shows: 'a reject still in flight at the deadline fails the call and is aborted',
  },
];

type Invalid = InvalidRecord & { line: number };

function windowOf(file: string): number {
  const scenario = SCENARIOS.find((s) => s.file === file);
  if (!scenario) throw new Error(`no scenario named ${file}`);
  return scenario.windowMs;
}

async function replayScenario(file: string): Promise<{ report: ReplayReport; invalid: Invalid[] }> {
  const invalid: Invalid[] = [];
  const report = await replayFile(join(HERE, `${file}.jsonl`), {
    windowMs: windowOf(file),
    onInvalid: (record) => invalid.push(record),
  });
  return { report, invalid };
}

function expectedOf(file: string): unknown {
  return JSON.parse(readFileSync(join(HERE, `${file}.expected.json`), 'utf8'));
}

function requestsFor(report: ReplayReport, callId: string) {
  return report.requests.filter((request) => request.callId === callId);
}

describe('each replay scenario gives exactly its expected document', () => {
  for (const { file, shows } of SCENARIOS) {
    it(`${file}: ${shows}`, async () => {
      const { report, invalid } = await replayScenario(file);
      expect({ calls: report.calls }).toStrictEqual(expectedOf(file));
      if (file !== 'invalid-lines-skipped') expect(invalid).toEqual([]);
    });
  }
});

describe('the scripted Graph sees the requests the contract allows', () => {
  it('receives the reason in lower case whatever case the event used', async () => {
    const { report } = await replayScenario('reason-case-insensitive');
    expect(report.requests.map((r) => [r.callId, r.reason])).toEqual([
      ['loud', 'busy'],
      ['mixed', 'forbidden'],
    ]);
  });

  it('waits the Retry-After between a 429 and the next request', async () => {
    const { report } = await replayScenario('retry-after-429-honoured');
    const [first, second] = requestsFor(report, 'after429');
    expect(second?.startedAt).toBe((first?.startedAt ?? Number.NaN) + 2_500);
  });

  it('aborts a request in flight when the call is answered, and only then', async () => {
    const { report } = await replayScenario('answered-during-inflight-reject');
    expect(requestsFor(report, 'slowans').map((r) => r.aborted)).toEqual([true]);
    expect(requestsFor(report, 'slowok').map((r) => r.aborted)).toEqual([false]);
  });

  it('aborts a request still in flight when the window closes', async () => {
    const { report } = await replayScenario('inflight-reject-outlasts-deadline-failed');
    expect(report.requests.map((r) => r.aborted)).toEqual([true]);
  });

  it('sends no retry after the call was answered during the back-off', async () => {
    const { report } = await replayScenario('answered-while-waiting-to-retry');
    expect(report.requests).toHaveLength(1);
  });

  it('sends no more than eight requests for one call', async () => {
    const { report } = await replayScenario('retries-run-out-max-attempts');
    expect(report.requests.map((r) => r.status)).toEqual(Array(8).fill(503));
  });

  it('sends nothing for a refused or duplicate reject', async () => {
    const refused = await replayScenario('refused-after-answered-ended-timedout');
    expect(refused.report.requests).toEqual([]);
    const atDeadline = await replayScenario('reject-at-deadline-refused');
    expect(atDeadline.report.requests.map((r) => r.callId)).toEqual(['justbefore']);
    const duplicates = await replayScenario('duplicates-ignored');
    expect(duplicates.report.requests.map((r) => r.callId)).toEqual(['duprej']);
    const twice = await replayScenario('refused-second-reject-while-rejecting');
    expect(twice.report.requests.map((r) => [r.callId, r.attempt])).toEqual([
      ['rejtwice', 1],
      ['waittwice', 1],
      ['waittwice', 2],
    ]);
  });

  it('addresses every request to the canonical call id', async () => {
    const { report } = await replayScenario('guid-call-id-spellings');
    expect(report.requests.map((r) => r.callId)).toEqual([
      '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6',
      '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6',
    ]);
  });
});

describe('invalid lines are reported and skipped', () => {
  it('names the field and the rule in each error, one record per bad line', async () => {
    const { report, invalid } = await replayScenario('invalid-lines-skipped');
    const errors = invalid.map((record) => record.error);
    expect(report.invalid).toBe(7);
    expect(invalid.map((record) => record.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(errors).toContainEqual(expect.stringMatching(/^\(message\): must be JSON /));
    expect(errors).toContainEqual(expect.stringMatching(/^type: must be one of .*"call\.ringing"/));
    expect(errors).toContainEqual(expect.stringMatching(/^reason: must be one of none, busy/));
    expect(errors).toContainEqual(expect.stringMatching(/^callbackUri: must be an absolute https/));
    expect(errors).toContainEqual(
      expect.stringMatching(/^callId: must be ASCII letters, digits, "-" and "_" only \(no "\."/),
    );
    expect(errors).toContainEqual(expect.stringMatching(/^status: must be an HTTP status/));
    expect(errors).toContainEqual(expect.stringMatching(/^at: is required$/));
  });

  it('keeps the original text of each bad line as its payload', async () => {
    const { invalid } = await replayScenario('invalid-lines-skipped');
    const lines = readFileSync(join(HERE, 'invalid-lines-skipped.jsonl'), 'utf8').split('\n');
    for (const record of invalid) expect(record.payload).toBe(lines[record.line - 1]);
  });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCli(args: readonly string[]): Promise<Run> {
  const env = { ...process.env };
  delete env.ANSWER_TIMEOUT_MS;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', ...args],
      { cwd: ROOT, env },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('callgate replay --json', () => {
  it('prints only the expected document on stdout, the invalid lines on stderr, and exits 0', async () => {
    const file = 'invalid-lines-skipped';
    const run = await runCli([
      'replay',
      join('test', 'replay', `${file}.jsonl`),
      '--json',
      '--answer-timeout-ms',
      String(windowOf(file)),
    ]);
    expect(run.code).toBe(0);
    expect(run.stdout.endsWith('\n')).toBe(true);
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(1);
    expect(JSON.parse(run.stdout)).toStrictEqual(expectedOf(file));
    const reported = run.stderr.split('\n').filter((line) => line.startsWith('invalid '));
    expect(reported).toHaveLength(7);
    expect(JSON.parse(reported[2]?.slice('invalid '.length) ?? 'null')).toMatchObject({
      subject: 'call.events.good',
      error: 'reason: must be one of none, busy, forbidden',
    });
  }, 30_000);
});
