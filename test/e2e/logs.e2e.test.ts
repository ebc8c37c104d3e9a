import { describe, expect, it } from 'vitest';
import { incoming, newCallId, reject } from '../support/call-bus.js';
import { startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';

/**
 * What `callgate serve` writes about a few calls, read as an operator (or an
 * attacker with the logs) would: every line of stdout and stderr of a whole
 * run, from start to SIGTERM, at debug level.
 */

const WINDOW_MS = 5_000;
const TOKEN = 'tok-SECRET-1234';
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ADA_ID = '112f7296-5fa4-42ca-bae8-6a692b15d4b8';
const PHONE = '+15551234567';
const HASH = /^h:[0-9a-f]{12}$/;

/** Graph's participantInfo for Ada calling from Teams. */
const ada = {
  '@odata.type': '#microsoft.graph.participantInfo',
  identity: {
    '@odata.type': '#microsoft.graph.identitySet',
    user: { displayName: 'Ada Lovelace', id: ADA_ID, tenantId: TENANT_ID },
  },
  endpointType: 'default',
};

/** Graph's participantInfo for a caller from the phone network. */
const phoneCaller = {
  '@odata.type': '#microsoft.graph.participantInfo',
  identity: { phone: { id: PHONE } },
  countryCode: 'US',
};

const botTargets = [
  { identity: { application: { displayName: 'Reception bot', id: 'reception-bot-app' } } },
];

const e2e = useE2e({ scope: 'test' });

interface Run {
  /** Everything the process wrote, stdout then stderr. */
  readonly output: string;
  /** The JSON log lines among it. */
  readonly lines: Record<string, unknown>[];
  readonly calls: { readonly ada1: string; readonly ada2: string; readonly phone: string };
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * One whole run of `callgate serve` with `extra` in its environment: Ada
 * calls twice (rejected; Graph answers 503 once, then rejected), a phone
 * caller arrives through a Graph notification batch (rejected), and an
 * invalid incoming names Grace Hopper. Then SIGTERM, and the output.
 */
async function loggedRun(extra: Record<string, string>): Promise<Run> {
  const calls = { ada1: newCallId(), ada2: newCallId(), phone: newCallId() };
  const { bus, env } = await e2e.fresh('e2elogs', WINDOW_MS, {
    LOG_LEVEL: 'debug',
    GRAPH_TOKEN: TOKEN,
    ...extra,
  });
  const service = await startCallgate(env);

  const adaCalls = (callId: string) => ({
    ...incoming(callId),
    tenantId: TENANT_ID,
    source: ada,
    targets: botTargets,
  });
  await bus.send(adaCalls(calls.ada1));
  await bus.send(reject(calls.ada1));
  e2e.graph.setFault({ callId: calls.ada2, times: 1, fault: { kind: 'status', status: 503 } });
  await bus.send(adaCalls(calls.ada2));
  await bus.send(reject(calls.ada2));
  await bus.publish(
    bus.notificationsSubject,
    JSON.stringify({
      '@odata.type': '#microsoft.graph.commsNotifications',
      value: [
        {
          changeType: 'created',
          resourceUrl: `/communications/calls/${calls.phone}`,
          resourceData: {
            '@odata.type': '#microsoft.graph.call',
            state: 'incoming',
            direction: 'incoming',
            source: phoneCaller,
            targets: botTargets,
            tenantId: TENANT_ID,
          },
        },
      ],
    }),
  );
  await bus.send(reject(calls.phone));
  const invalidId = newCallId();
  await bus.send({
    ...incoming(invalidId),
    targets: { identity: { user: { displayName: 'Grace Hopper', id: 'grace-id' } } },
  });

  for (const callId of Object.values(calls)) {
    const records = await bus.settled(callId);
    expect(records.at(-1)?.state).toBe('rejected');
  }
  await eventually(() => bus.invalid.length === 1);
  // The token did travel: to Graph, and only there.
  expect(e2e.graph.received().map((r) => r.token)).toEqual([TOKEN, TOKEN, TOKEN, TOKEN]);

  service.child.kill('SIGTERM');
  expect(await service.exited).toEqual({ code: 0, signal: null });
  const output = service.stdout() + service.stderr();
  return { output, lines: jsonLines(output), calls };
}

/** The "incoming call" lines of a run, by call id. */
function incomingLines(result: Run): Map<unknown, Record<string, unknown>[]> {
  const byCall = new Map<unknown, Record<string, unknown>[]>();
  for (const line of result.lines.filter((l) => l.msg === 'incoming call')) {
    byCall.set(line.callId, [...(byCall.get(line.callId) ?? []), line]);
  }
  return byCall;
}

function userOf(line: Record<string, unknown> | undefined): Record<string, unknown> {
  const source = line?.source as { identity?: { user?: Record<string, unknown> } } | undefined;
  return source?.identity?.user ?? {};
}

function phoneOf(line: Record<string, unknown> | undefined): unknown {
  const source = line?.source as { identity?: { phone?: { id?: unknown } } } | undefined;
  return source?.identity?.phone?.id;
}

describe('the logs of a whole callgate run', () => {
  it('never show the Graph token, a caller name, a user id or a phone number, and show hashes instead', async () => {
    const result = await loggedRun({ LOG_PII: '0' });
    const { output, calls } = result;

    // The run did log at debug: Graph's answers, and every state change.
    expect(result.lines.some((l) => l.msg === 'reject accepted')).toBe(true);
    expect(result.lines.some((l) => l.msg === 'reject refused')).toBe(true);
    for (const secret of [TOKEN, 'SECRET-1234', 'Bearer']) expect(output).not.toContain(secret);
    for (const personal of [
      'Ada Lovelace',
      'Lovelace',
      ADA_ID,
      PHONE,
      '5551234567',
      'Grace Hopper',
      'grace-id',
    ]) {
      expect(output).not.toContain(personal);
    }
    expect(output).toContain('"h:');

    const byCall = incomingLines(result);
    expect([...byCall.keys()].sort()).toEqual(Object.values(calls).sort());
    for (const lines of byCall.values()) expect(lines).toHaveLength(1);
    const [first] = byCall.get(calls.ada1) ?? [];
    const [second] = byCall.get(calls.ada2) ?? [];
    const [phone] = byCall.get(calls.phone) ?? [];
    expect(first).toMatchObject({ level: 30, tenantId: TENANT_ID });
    expect(userOf(first).displayName).toMatch(HASH);
    expect(userOf(first).id).toMatch(HASH);
    expect(userOf(first).tenantId).toBe(TENANT_ID);
    // Ada's two calls can be told to be hers, within this run.
    expect(userOf(second)).toEqual(userOf(first));
    expect(phoneOf(phone)).toMatch(HASH);
  });

  it('show callers as they are with LOG_PII=1, and still never the token', async () => {
    const result = await loggedRun({ LOG_PII: '1' });
    const { output, calls } = result;

    expect(output).toContain('Ada Lovelace');
    expect(output).toContain(PHONE);
    expect(output).not.toContain(TOKEN);
    const byCall = incomingLines(result);
    expect(userOf(byCall.get(calls.ada1)?.[0])).toEqual(ada.identity.user);
    expect(phoneOf(byCall.get(calls.phone)?.[0])).toBe(PHONE);
  });
});
