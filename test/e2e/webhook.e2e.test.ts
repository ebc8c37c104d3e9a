import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallBus, newCallId } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';
import {
  APP_ID,
  ISSUER,
  type KeyServer,
  mintToken,
  newSigningKey,
  type SigningKey,
  startKeyServer,
  TENANT,
} from '../webhook/support.js';

/** Graph's callback through the real front door: webhook → JetStream → actor. */

const PREFIX = 'e2ehook';
const WINDOW_MS = 4_000;

const e2e = useE2e({ scope: 'file' });

let keyServer: KeyServer;
let key: SigningKey;
let bus: CallBus;
let service: CallgateProcess;

function incomingBatch(callId: string) {
  return {
    '@odata.type': '#microsoft.graph.commsNotifications',
    value: [
      {
        changeType: 'created',
        resourceUrl: `/communications/calls/${callId}`,
        resourceData: {
          '@odata.type': '#microsoft.graph.call',
          state: 'incoming',
          direction: 'incoming',
          tenantId: TENANT,
        },
      },
    ],
  };
}

async function post(body: unknown, token?: string): Promise<number> {
  const response = await fetch(`${service.httpUrl}/api/calling`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token && { authorization: `Bearer ${token}` }),
      'x-microsoft-skype-message-id': newCallId(),
    },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  key = await newSigningKey();
  keyServer = await startKeyServer([key]);
  bus = await e2e.openBus(PREFIX);
  service = await startCallgate(
    e2e.env(PREFIX, WINDOW_MS, {
      WEBHOOK_APP_ID: APP_ID,
      WEBHOOK_OPENID_URL: keyServer.openIdUrl,
      WEBHOOK_ISSUERS: ISSUER,
    }),
  );
});

afterAll(async () => {
  await keyServer?.close();
});

describe('POST /api/calling', () => {
  it('stores a signed batch and answers 202; the call then rings', async () => {
    const callId = newCallId();
    expect(await post(incomingBatch(callId), await mintToken(key))).toBe(202);
    const ringing = await bus.settled(callId, WINDOW_MS + 5_000);
    expect(ringing.map((r) => r.state)).toEqual(['ringing', 'timedOut']);
  });

  it('answers 401 to a missing or foreign token and stores nothing', async () => {
    const stranger = await newSigningKey();
    const callId = newCallId();
    expect(await post(incomingBatch(callId))).toBe(401);
    expect(await post(incomingBatch(callId), await mintToken(stranger))).toBe(401);
    expect(await post(incomingBatch(callId), await mintToken(key, { aud: 'someone-else' }))).toBe(
      401,
    );
    // A valid call after them is the proof that the refused ones would have arrived by now.
    const after = newCallId();
    expect(await post(incomingBatch(after), await mintToken(key))).toBe(202);
    await bus.settled(after, WINDOW_MS + 5_000);
    expect(bus.recordsOf(callId)).toEqual([]);
  });
});
