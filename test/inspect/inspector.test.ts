import { WebSocket } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createPiiSanitizer, piiHasher } from '../../src/pii.js';
import { incoming, newCallId, reject } from '../support/call-bus.js';
import { startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import { eventually } from '../support/eventually.js';
import { freePort } from '../support/nats-server.js';

/**
 * `INSPECT=1`: every call actor is sent, sanitized, to @statelyai/inspect's
 * relay, which passes it on to the page a developer opens. The test's client
 * connects to the relay as that page does (a WebSocket on its root, JSON text
 * frames, the page's own Origin).
 */

const e2e = useE2e({ scope: 'test' });

const sockets: WebSocket[] = [];

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

interface Received {
  readonly texts: string[];
  readonly events: Record<string, unknown>[];
  readonly opened: Promise<void>;
}

/** Connect like the relay's page: `new WebSocket('ws://localhost:<port>')` from that page's origin. */
function connect(port: number, origin = `http://localhost:${port}`): Received {
  const socket = new WebSocket(`ws://127.0.0.1:${port}`, { headers: { origin } });
  sockets.push(socket);
  const texts: string[] = [];
  const events: Record<string, unknown>[] = [];
  socket.addEventListener('message', (event) => {
    const text = String(event.data);
    texts.push(text);
    events.push(JSON.parse(text) as Record<string, unknown>);
  });
  const opened = new Promise<void>((resolve, rejected) => {
    socket.addEventListener('open', () => resolve());
    socket.addEventListener('error', () => rejected(new Error('WebSocket refused')));
  });
  return { texts, events, opened };
}

async function startInspected(prefix: string) {
  const inspectPort = await freePort();
  const bus = await e2e.openBus(prefix);
  const proc = await startCallgate(
    e2e.env(prefix, 5_000, { INSPECT: '1', INSPECT_PORT: String(inspectPort), LOG_LEVEL: 'info' }),
  );
  return { proc, inspectPort, bus };
}

type Snapshot = { value?: unknown; context?: { callId?: string } };

describe('callgate serve with INSPECT=1', () => {
  it('sends a call actor, its events and its move to rejected to the inspector, with no caller identity', async () => {
    const { proc, inspectPort, bus } = await startInspected('inspect1');
    const url = `http://localhost:${inspectPort}/`;
    expect(proc.stdout()).toContain('Stately inspector: open this URL');
    expect(proc.stdout()).toContain(url);

    // The page a developer opens: Stately's inspector and the relay's WebSocket.
    const page = await fetch(`http://127.0.0.1:${inspectPort}/`);
    const html = await page.text();
    expect(html).toContain('https://stately.ai/inspect');
    expect(html).toContain(`ws://localhost:${inspectPort}`);

    const client = connect(inspectPort);
    await client.opened;

    const callId = newCallId();
    const name = 'Ada Lovelace';
    const source = {
      identity: { user: { id: '8a1f5c3e-0000-4000-8000-000000000001', displayName: name } },
      countryCode: 'GB',
    };
    await bus.send({ ...incoming(callId), source, tenantId: 'tenant-1' });
    await bus.send(reject(callId, 'busy'));
    const records = await bus.settled(callId);
    expect(records.at(-1)?.state).toBe('rejected');

    const ofCall = (type: string) =>
      client.events.filter(
        (e) =>
          e.type === type &&
          (e.name === callId || (e.snapshot as Snapshot | undefined)?.context?.callId === callId),
      );
    await eventually(() =>
      ofCall('@xstate.snapshot').some((e) => (e.snapshot as Snapshot).value === 'rejected'),
    );

    const actors = client.events.filter((e) => e.type === '@xstate.actor' && e.name === callId);
    expect(actors).toHaveLength(1);
    const [actor] = actors;
    expect(actor?.definition).toEqual(expect.stringContaining('"ringing"'));
    const sessionId = actor?.sessionId;

    // One actor for the whole call (keepAwake): every event and snapshot is its.
    const events = client.events.filter(
      (e) => e.type === '@xstate.event' && e.sessionId === sessionId,
    );
    expect(events.map((e) => (e.event as { type: string }).type)).toEqual(
      expect.arrayContaining(['xstate.init', 'call.reject']),
    );
    const values = ofCall('@xstate.snapshot').map((e) => (e.snapshot as Snapshot).value);
    expect(values[0]).toBe('ringing');
    expect(values.at(-1)).toBe('rejected');
    expect(ofCall('@xstate.snapshot').every((e) => e.sessionId === sessionId)).toBe(true);

    // Nothing of who called: not the name, not the user id.
    const all = client.texts.join('\n');
    expect(all).toContain(callId);
    expect(all).not.toContain(name);
    expect(all).not.toContain(source.identity.user.id);

    // The relay and its connections close with the service.
    const exit = await proc.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
  });

  it('refuses a WebSocket from another web page', async () => {
    const { inspectPort } = await startInspected('inspect2');
    await expect(connect(inspectPort, 'https://evil.example').opened).rejects.toThrow(/refused/);
    await connect(inspectPort).opened;
  });
});

describe('the personal-data sanitizer, as the inspector uses it', () => {
  const sanitize = createPiiSanitizer((value) => `h(${value})`).anywhere;

  it('hashes identities and phone numbers anywhere, keeping what is not personal', () => {
    const event = {
      type: 'call.incoming',
      createdAt: '1767225600000',
      callId: 'c-1',
      nested: {
        source: {
          identity: { user: { id: 'u-1', displayName: 'Ada', tenantId: 't-1' } },
          endpointType: 'default',
        },
        targets: [{ identity: { phone: { id: '+442071234567' } } }],
        note: 'tel:+1 555 010 9999',
        displayName: 'Grace',
      },
      fn: () => 1,
    };
    expect(sanitize(event)).toEqual({
      type: 'call.incoming',
      createdAt: '1767225600000',
      callId: 'c-1',
      nested: {
        source: {
          identity: { user: { id: 'h(u-1)', displayName: 'h(Ada)', tenantId: 't-1' } },
          endpointType: 'default',
        },
        targets: [{ identity: { phone: { id: 'h(+442071234567)' } } }],
        note: 'h(tel:+1 555 010 9999)',
        displayName: 'h(Grace)',
      },
    });
  });

  it('hashes once: an event sanitized again (sanitizeEvent, then serialize) is unchanged', () => {
    const real = createPiiSanitizer(piiHasher()).anywhere;
    const once = real({
      source: { identity: { user: { displayName: 'Ada' } } },
      n: '+33123456789',
    });
    expect(JSON.stringify(once)).not.toContain('Ada');
    expect(real(once)).toEqual(once);
  });

  it('cuts cycles and honours toJSON', () => {
    const looped: Record<string, unknown> = { a: 1 };
    looped.self = looped;
    expect(sanitize({ looped, at: { toJSON: () => 'then' } })).toEqual({
      looped: { a: 1, self: '[redacted]' },
      at: 'then',
    });
  });
});
