import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGraphEmulator, type GraphEmulator } from '../../../src/tools/emulator/emulator.js';
import { call } from './support.js';

const TENANT = 'contoso';

let graph: GraphEmulator;

beforeEach(async () => {
  graph = await createGraphEmulator({
    tokenTtlSeconds: 600,
    credentials: { clientId: 'app', clientSecret: 'right' },
  });
});

afterEach(async () => {
  await graph.close();
});

function tokenRequest(fields: Record<string, string>) {
  return call(graph.tokenEndpoint(TENANT), {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

const GOOD = {
  grant_type: 'client_credentials',
  client_id: 'app',
  client_secret: 'right',
  scope: 'https://graph.microsoft.com/.default',
};

describe('the token endpoint', () => {
  it('issues a bearer token with the configured lifetime and counts it', async () => {
    const answer = await tokenRequest(GOOD);

    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({
      token_type: 'Bearer',
      expires_in: 600,
      access_token: expect.stringMatching(/^emu\.contoso\.1\./),
    });
    expect(graph.stats().tokensIssued).toBe(1);
  });

  it('refuses another grant type', async () => {
    const answer = await tokenRequest({ ...GOOD, grant_type: 'password' });

    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({ error: 'unsupported_grant_type' });
  });

  it('names a missing parameter', async () => {
    const { client_secret: _, ...noSecret } = GOOD;

    const answer = await tokenRequest(noSecret);

    expect(answer.status).toBe(400);
    expect(answer.json).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringContaining("'client_secret'"),
    });
  });

  it('refuses a scope that is not /.default', async () => {
    const answer = await tokenRequest({ ...GOOD, scope: 'Calls.Initiate.All' });

    expect(answer.json).toMatchObject({ error: 'invalid_scope' });
  });

  it('answers 401 invalid_client to a wrong secret and issues nothing', async () => {
    const answer = await tokenRequest({ ...GOOD, client_secret: 'wrong' });

    expect(answer.status).toBe(401);
    expect(answer.json).toMatchObject({ error: 'invalid_client' });
    expect(graph.stats().tokensIssued).toBe(0);
  });

  it('publishes an OpenID configuration that points at itself', async () => {
    const answer = await call(`${graph.url}/${TENANT}/v2.0/.well-known/openid-configuration`);

    expect(answer.json).toMatchObject({ token_endpoint: graph.tokenEndpoint(TENANT) });
  });
});
