import { request as httpRequest } from 'node:http';
import { exportSPKI, SignJWT } from 'jose';
import { request } from 'undici';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  APP_ID,
  base64url,
  ISSUER,
  incomingBatch,
  mintToken,
  newSigningKey,
  PATH,
  post,
  type SigningKey,
  startWebhook,
  TENANT,
  type WebhookHarness,
} from './support.js';

const nowSec = () => Math.floor(Date.now() / 1000);

let key: SigningKey;
let hook: WebhookHarness;

beforeAll(async () => {
  key = await newSigningKey();
});

beforeEach(async () => {
  hook = await startWebhook({ keys: [key] });
});

afterEach(async () => {
  await hook.close();
});

/** The refusal checks every refused case shares: the status, and nothing stored. */
async function expectRefused(answer: Promise<{ status: number }>, status: number): Promise<void> {
  expect((await answer).status).toBe(status);
  expect(hook.published).toEqual([]);
}

describe('POST /api/calling with a valid token', () => {
  it('answers 202 and publishes the body once, with the tenant and the correlation headers', async () => {
    const token = await mintToken(key);
    const body = JSON.stringify(incomingBatch());
    const answer = await post(hook.url, {
      token,
      body,
      headers: {
        'scenario-id': 'scenario-1',
        'x-microsoft-skype-chain-id': 'chain-1',
        'x-microsoft-skype-message-id': 'message-1',
        'client-request-id': 'request-1',
        'x-other': 'not passed on',
      },
    });
    expect(answer.status).toBe(202);
    expect(hook.published).toEqual([
      {
        body,
        headers: {
          'tenant-id': TENANT,
          'scenario-id': 'scenario-1',
          'x-microsoft-skype-chain-id': 'chain-1',
          'x-microsoft-skype-message-id': 'message-1',
          'client-request-id': 'request-1',
        },
      },
    ]);
  });

  it('takes the tenant from the long tenantid claim when tid is absent', async () => {
    const other = '0b9a6b9e-3c1f-4f55-8a0e-1c2d3e4f5a6b';
    const token = await mintToken(key, {
      tid: undefined,
      'http://schemas.microsoft.com/identity/claims/tenantid': other,
    });
    expect((await post(hook.url, { token })).status).toBe(202);
    expect(hook.published[0]?.headers['tenant-id']).toBe(other);
  });

  it('accepts the second issuer, an expiry within the clock tolerance, and an application/*+json type', async () => {
    const token = await mintToken(key, { iss: 'https://graph.microsoft.com', exp: nowSec() - 30 });
    const answer = await post(hook.url, {
      token,
      headers: { 'content-type': 'application/vnd.graph+json' },
    });
    expect(answer.status).toBe(202);
    expect(hook.published).toHaveLength(1);
  });

  it('answers 204 to a legacy notification and publishes nothing', async () => {
    const token = await mintToken(key);
    const body = JSON.stringify({ id: 'abc', callState: 'incoming' });
    await expectRefused(post(hook.url, { token, body }), 204);
  });

  it('answers 503 when publishing fails, so Graph retries', async () => {
    hook.failPublish(true);
    const token = await mintToken(key);
    await expectRefused(post(hook.url, { token }), 503);
  });

  it('never writes the token to the log', async () => {
    const token = await mintToken(key);
    await post(hook.url, { token });
    await post(hook.url, { token: await mintToken(key, { aud: 'someone-else' }) });
    await post(hook.url, { token, body: '{' });
    const signature = token.split('.')[2] ?? '';
    expect(hook.logText()).toContain('webhook answered');
    expect(hook.logText()).not.toContain(signature);
    expect(hook.logText()).not.toContain(token.split('.')[1] ?? '');
  });
});

describe('POST /api/calling with one token on many notifications, as Graph sends them', () => {
  it('accepts it each time and publishes each batch, with its tenant', async () => {
    const token = await mintToken(key);
    for (let i = 0; i < 3; i++) expect((await post(hook.url, { token })).status).toBe(202);
    expect(hook.published.map((message) => message.headers['tenant-id'])).toEqual([
      TENANT,
      TENANT,
      TENANT,
    ]);
  });

  it('refuses it with 401 once it expired, though it was accepted before', async () => {
    const token = await mintToken(key, { exp: Math.floor(hook.clock.now() / 1000) + 120 });
    expect((await post(hook.url, { token })).status).toBe(202);
    hook.clock.advance(179_000); // exp + 59 s: within the 60 s tolerance
    expect((await post(hook.url, { token })).status).toBe(202);
    hook.clock.advance(2_000);
    expect((await post(hook.url, { token })).status).toBe(401);
    expect(hook.published).toHaveLength(2);
    expect(hook.logText()).toContain('"reason":"expired"');
  });
});

describe('POST /api/calling refuses a bad token with 401', () => {
  it('when the audience is another app', async () => {
    await expectRefused(post(hook.url, { token: await mintToken(key, { aud: 'other-app' }) }), 401);
  });

  it('when the issuer is not accepted', async () => {
    const token = await mintToken(key, { iss: 'https://login.microsoftonline.com/evil/v2.0' });
    await expectRefused(post(hook.url, { token }), 401);
  });

  it('when it expired longer ago than the clock tolerance', async () => {
    const token = await mintToken(key, { exp: nowSec() - 600 });
    await expectRefused(post(hook.url, { token }), 401);
  });

  it('when it is not valid yet beyond the clock tolerance', async () => {
    const token = await mintToken(key, { nbf: nowSec() + 600 });
    await expectRefused(post(hook.url, { token }), 401);
  });

  it('when it has no expiry at all', async () => {
    await expectRefused(post(hook.url, { token: await mintToken(key, { exp: undefined }) }), 401);
  });

  it('when it is unsigned (alg none), without a key being fetched', async () => {
    const claims = { iss: ISSUER, aud: APP_ID, tid: TENANT, exp: nowSec() + 3600 };
    const unsigned = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
    await expectRefused(post(hook.url, { token: unsigned }), 401);
    const withKid = `${base64url({ alg: 'none', kid: key.kid })}.${base64url(claims)}.`;
    await expectRefused(post(hook.url, { token: withKid }), 401);
    expect(hook.keys.fetches.jwks).toBe(0);
  });

  it('when it is HS256-signed with the public key as the secret (key confusion)', async () => {
    const claims = { iss: ISSUER, aud: APP_ID, tid: TENANT };
    const secrets = [
      new TextEncoder().encode(await exportSPKI(key.publicKey)),
      new TextEncoder().encode(JSON.stringify(key.jwk)),
      Buffer.from(key.jwk.n ?? '', 'base64url'),
    ];
    for (const secret of secrets) {
      const token = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', kid: key.kid })
        .setExpirationTime('1h')
        .sign(secret);
      await expectRefused(post(hook.url, { token }), 401);
    }
  });

  it('when it is signed by another key that claims a known kid', async () => {
    const impostor = { ...(await newSigningKey(key.kid)) };
    await expectRefused(post(hook.url, { token: await mintToken(impostor) }), 401);
  });

  it('when its payload was changed after signing', async () => {
    const [header, , signature] = (await mintToken(key)).split('.');
    const forged = `${header}.${base64url({ iss: ISSUER, aud: APP_ID, tid: 'evil', exp: nowSec() + 60 })}.${signature}`;
    await expectRefused(post(hook.url, { token: forged }), 401);
  });

  it('when the Authorization header is missing, with a WWW-Authenticate challenge', async () => {
    const answer = await post(hook.url, { token: null });
    expect(answer.status).toBe(401);
    expect(answer.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
    expect(hook.published).toEqual([]);
  });

  it('when the scheme is not Bearer', async () => {
    const token = await mintToken(key);
    await expectRefused(post(hook.url, { authorization: `Basic ${token}` }), 401);
    await expectRefused(post(hook.url, { authorization: 'Bearer' }), 401);
  });

  it('when the token is malformed', async () => {
    for (const token of [
      'abc',
      'a.b',
      'a.b.c',
      '!!.??.**',
      `${'a'.repeat(40)}.${'b'.repeat(40)}.c`,
    ]) {
      await expectRefused(post(hook.url, { token }), 401);
    }
  });

  it('when the token names no tenant', async () => {
    await expectRefused(post(hook.url, { token: await mintToken(key, { tid: undefined }) }), 401);
  });
});

describe('POST /api/calling with a tenant allow-list', () => {
  it('refuses a tenant not on the list with 401 and accepts one on it, whatever the case', async () => {
    const other = await startWebhook({
      keys: [key],
      verify: { tenants: ['0B9A6B9E-3C1F-4F55-8A0E-1C2D3E4F5A6B'] },
    });
    try {
      expect((await post(other.url, { token: await mintToken(key) })).status).toBe(401);
      expect(other.published).toEqual([]);
      const allowed = await mintToken(key, { tid: '0b9a6b9e-3c1f-4f55-8a0e-1c2d3e4f5a6b' });
      expect((await post(other.url, { token: allowed })).status).toBe(202);
      expect(other.published).toHaveLength(1);
    } finally {
      await other.close();
    }
  });
});

describe('POST /api/calling refuses a bad body', () => {
  it('with 415 when the content type is not JSON, or missing', async () => {
    const token = await mintToken(key);
    await expectRefused(post(hook.url, { token, headers: { 'content-type': 'text/plain' } }), 415);
    await expectRefused(
      post(hook.url, { token, headers: { 'content-type': 'application/jsonp' } }),
      415,
    );
    await expectRefused(post(hook.url, { token, headers: { 'content-type': '' } }), 415);
  });

  it('with 415 before looking at the token', async () => {
    await expectRefused(
      post(hook.url, { token: null, headers: { 'content-type': 'text/xml' } }),
      415,
    );
  });

  it('with 400 when the body is not JSON, not UTF-8, or not an object', async () => {
    const token = await mintToken(key);
    for (const body of ['{', '', 'null', '[]', '42', '"text"', '\u00ff\u00fe']) {
      await expectRefused(post(hook.url, { token, body }), 400);
    }
    const latin1 = await rawPost(hook.port, {
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]),
    });
    expect(latin1.status).toBe(400);
    expect(hook.published).toEqual([]);
  });

  it('with 401 rather than 400 when both the token and the body are bad', async () => {
    await expectRefused(post(hook.url, { token: null, body: '{' }), 401);
  });
});

describe('POST /api/calling refuses an oversized body with 413', () => {
  it('from its declared length alone, before any of it is sent', async () => {
    const token = await mintToken(key);
    const { status } = await rawPost(hook.port, {
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'content-length': String(2 * 1024 * 1024),
      },
      body: Buffer.alloc(0),
      endRequest: false,
    });
    expect(status).toBe(413);
    expect(hook.published).toEqual([]);
  });

  it('as soon as a chunked body passes the limit, before the client has finished sending', async () => {
    const small = await startWebhook({ keys: [key], maxBytes: 64 * 1024 });
    try {
      const token = await mintToken(key);
      const upTo = 64 * 1024 * 1024;
      const answer = await rawPost(small.port, {
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        stream: { chunkBytes: 16 * 1024, upTo },
      });
      expect(answer.status).toBe(413);
      expect(answer.sent).toBeLessThan(upTo);
      expect(small.published).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('and accepts a body of exactly the limit', async () => {
    const token = await mintToken(key);
    const batch = JSON.stringify(incomingBatch());
    const exact = await startWebhook({ keys: [key], maxBytes: Buffer.byteLength(batch) });
    try {
      expect((await post(exact.url, { token, body: batch })).status).toBe(202);
      expect((await post(exact.url, { token, body: `${batch} ` })).status).toBe(413);
      expect(exact.published).toHaveLength(1);
    } finally {
      await exact.close();
    }
  });
});

describe('POST /api/calling bounds what an unauthenticated client costs', () => {
  it('answers 401 to a missing token before reading the body, however much is coming', async () => {
    const upTo = 64 * 1024 * 1024;
    const answer = await rawPost(hook.port, {
      headers: { 'content-type': 'application/json' },
      stream: { chunkBytes: 16 * 1024, upTo },
    });
    expect(answer.status).toBe(401);
    expect(answer.sent).toBeLessThan(upTo);
    expect(hook.published).toEqual([]);
  });

  it('answers 503 with Retry-After while as many bodies as allowed are being read', async () => {
    const narrow = await startWebhook({
      keys: [key],
      maxConcurrentBodies: 1,
      bodyTimeoutMs: 5_000,
    });
    try {
      const token = await mintToken(key);
      const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      // One upload that never ends holds the only place.
      const slow = httpRequest({
        host: '127.0.0.1',
        port: narrow.port,
        path: PATH,
        method: 'POST',
        headers,
      });
      slow.on('error', () => {});
      slow.write('{"value": [');
      await new Promise((resolve) => setTimeout(resolve, 100));
      const second = await request(narrow.url, {
        method: 'POST',
        headers,
        body: JSON.stringify(incomingBatch()),
      });
      expect(second.statusCode).toBe(503);
      expect(second.headers['retry-after']).toBe('1');
      await second.body.dump();
      slow.destroy();
    } finally {
      await narrow.close();
    }
  });

  it('lets go of a body that does not arrive within the time limit', async () => {
    const strict = await startWebhook({ keys: [key], bodyTimeoutMs: 200 });
    try {
      const token = await mintToken(key);
      const closed = await new Promise<string>((resolve) => {
        const slow = httpRequest({
          host: '127.0.0.1',
          port: strict.port,
          path: PATH,
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        });
        slow.on('error', (error) => resolve((error as NodeJS.ErrnoException).code ?? 'error'));
        slow.on('response', (res) => resolve(`status ${res.statusCode}`));
        slow.write('{"value": [');
      });
      expect(closed).toBe('ECONNRESET');
      expect(strict.published).toEqual([]);
    } finally {
      await strict.close();
    }
  });
});

describe('the webhook route', () => {
  it('answers only POST on its path', async () => {
    const get = await request(hook.url, { method: 'GET' });
    await get.body.dump();
    expect(get.statusCode).toBe(404);
  });
});

/**
 * A POST by node:http, for what undici will not send: a body shorter than its
 * declared length (`endRequest: false` keeps the request open), or a chunked
 * body of `stream.chunkBytes` chunks written until the answer arrives or
 * `stream.upTo` bytes were sent. Resolves with the status and the bytes sent.
 */
function rawPost(
  port: number,
  options: {
    headers: Record<string, string>;
    body?: Buffer;
    endRequest?: boolean;
    stream?: { chunkBytes: number; upTo: number };
  },
): Promise<{ status: number; sent: number }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    let sent = 0;
    const req = httpRequest(
      { host: '127.0.0.1', port, path: PATH, method: 'POST', headers: options.headers },
      (res) => {
        answered = true;
        res.resume();
        resolve({ status: res.statusCode ?? 0, sent });
        req.destroy();
      },
    );
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    if (options.body) req.write(options.body);
    const stream = options.stream;
    if (stream) {
      const pump = () => {
        while (!answered && sent < stream.upTo) {
          sent += stream.chunkBytes;
          if (!req.write(Buffer.alloc(stream.chunkBytes, 0x20))) {
            req.once('drain', pump);
            return;
          }
        }
        if (!answered) req.end();
      };
      pump();
    } else if (options.endRequest !== false) {
      req.end();
    } else {
      req.flushHeaders();
    }
  });
}
