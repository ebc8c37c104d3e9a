import { describe, expect, it } from 'vitest';
import { createLogger, type Log } from '../src/log.js';
import { createPiiSanitizer, piiHasher } from '../src/pii.js';

/** The service's logger, writing to a string: its lines, parsed, and the raw text. */
function capture(options: { logPii?: boolean } = {}): {
  log: Log;
  text: () => string;
  lines: () => Record<string, unknown>[];
} {
  let text = '';
  const log = createLogger({
    level: 'trace',
    ...options,
    destination: {
      write(line: string) {
        text += line;
      },
    },
  });
  return {
    log,
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

const HASH = /^h:[0-9a-f]{12}$/;
const TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const ADA_ID = '112f7296-5fa4-42ca-bae8-6a692b15d4b8';
const PHONE = '+15551234567';

/** Graph's participantInfo for a Teams user calling. */
const ada = {
  '@odata.type': '#microsoft.graph.participantInfo',
  identity: {
    '@odata.type': '#microsoft.graph.identitySet',
    user: { displayName: 'Ada Lovelace', id: ADA_ID, tenantId: TENANT_ID },
  },
  endpointType: 'default',
  region: 'emea',
  languageId: 'en-GB',
};

/** Graph's participantInfo for a phone (PSTN) caller. */
const phoneCaller = { identity: { phone: { id: PHONE } }, countryCode: 'US' };

const botTargets = [
  { identity: { application: { displayName: 'Reception bot', id: 'f2a6d6a3-app' } } },
];

/** The value at `path` in a parsed log line. */
function at(line: Record<string, unknown> | undefined, ...path: (string | number)[]): unknown {
  let value: unknown = line;
  for (const key of path) {
    value = (value as Record<string | number, unknown> | undefined)?.[key];
  }
  return value;
}

describe('callers in log lines, by default', () => {
  it('replaces display names, user ids and phone numbers by a short keyed hash', () => {
    const { log, text, lines } = capture();
    log.info({ callId: 'c1', source: ada }, 'incoming call');
    log.info({ callId: 'c2', source: phoneCaller }, 'incoming call');

    expect(text()).not.toContain('Ada Lovelace');
    expect(text()).not.toContain(ADA_ID);
    expect(text()).not.toContain('15551234567');
    const [first, second] = lines();
    expect(at(first, 'source', 'identity', 'user', 'displayName')).toMatch(HASH);
    expect(at(first, 'source', 'identity', 'user', 'id')).toMatch(HASH);
    expect(at(second, 'source', 'identity', 'phone', 'id')).toMatch(HASH);
  });

  it('keeps the tenant, the kind of endpoint, the region and the call id as they are', () => {
    const { log, lines } = capture();
    log.info({ callId: 'c1', source: ada, tenantId: TENANT_ID }, 'incoming call');
    log.info({ callId: 'c2', source: phoneCaller }, 'incoming call');

    const [first, second] = lines();
    expect(first).toMatchObject({ callId: 'c1', tenantId: TENANT_ID, msg: 'incoming call' });
    expect(first?.source).toMatchObject({
      '@odata.type': '#microsoft.graph.participantInfo',
      identity: {
        '@odata.type': '#microsoft.graph.identitySet',
        user: { tenantId: TENANT_ID },
      },
      endpointType: 'default',
      region: 'emea',
      languageId: 'en-GB',
    });
    expect(at(second, 'source', 'countryCode')).toBe('US');
  });

  it('hashes the same value the same way within one logger, so one caller can be followed', () => {
    const { log, lines } = capture();
    log.info({ callId: 'c1', source: ada }, 'incoming call');
    log.child({ callId: 'c2' }).info({ source: structuredClone(ada) }, 'incoming call');
    log.info({ callId: 'c3', displayName: 'Ada Lovelace' }, 'a bare name');

    const names = lines().map(
      (line) => at(line, 'source', 'identity', 'user', 'displayName') ?? line.displayName,
    );
    expect(names[0]).toMatch(HASH);
    expect(names).toEqual([names[0], names[0], names[0]]);
  });

  it('hashes different values differently', () => {
    const { log, lines } = capture();
    log.info({ displayName: 'Ada Lovelace' }, 'one');
    log.info({ displayName: 'Grace Hopper' }, 'two');
    log.info({ phone: PHONE }, 'three');
    log.info({ phone: '+15551234568' }, 'four');

    const [ada1, grace, phone1, phone2] = lines();
    expect(ada1?.displayName).toMatch(HASH);
    expect(grace?.displayName).toMatch(HASH);
    expect(ada1?.displayName).not.toBe(grace?.displayName);
    expect(phone1?.phone).not.toBe(phone2?.phone);
  });

  it('hashes with a key of its own, so two runs cannot be matched up', () => {
    const one = capture();
    const two = capture();
    one.log.info({ displayName: 'Ada Lovelace' }, 'name');
    two.log.info({ displayName: 'Ada Lovelace' }, 'name');

    expect(one.lines()[0]?.displayName).not.toBe(two.lines()[0]?.displayName);
  });

  it('hashes every field that holds an identity: source, targets, identity, user, phone, displayName, userId', () => {
    const { log, text, lines } = capture();
    log.info(
      {
        callId: 'c1',
        targets: botTargets,
        identity: { user: { displayName: 'Grace Hopper', id: 'grace-id' } },
        user: { id: 'user-id-1', displayName: 'Alan Turing', tenantId: TENANT_ID },
        phone: '+442071234567',
        displayName: 'Edsger Dijkstra',
        userId: 'user-id-2',
      },
      'many identities',
    );

    for (const value of [
      'Reception bot',
      'f2a6d6a3-app',
      'Grace Hopper',
      'grace-id',
      'user-id-1',
      'Alan Turing',
      '442071234567',
      'Edsger Dijkstra',
      'user-id-2',
    ]) {
      expect(text()).not.toContain(value);
    }
    const [line] = lines();
    expect(at(line, 'targets', 0, 'identity', 'application', 'displayName')).toMatch(HASH);
    expect(at(line, 'identity', 'user', 'id')).toMatch(HASH);
    expect(at(line, 'user', 'tenantId')).toBe(TENANT_ID);
    expect(line?.phone).toMatch(HASH);
    expect(line?.userId).toMatch(HASH);
  });

  it('hashes identities given to a child logger as bindings', () => {
    const { log, text, lines } = capture();
    log.child({ callId: 'c1', source: ada }).info('ringing');

    expect(text()).not.toContain('Ada Lovelace');
    expect(at(lines()[0], 'source', 'identity', 'user', 'displayName')).toMatch(HASH);
  });

  it('leaves the logged object itself untouched', () => {
    const { log } = capture();
    const fields = { callId: 'c1', source: structuredClone(ada) };
    log.info(fields, 'incoming call');

    expect(fields).toEqual({ callId: 'c1', source: ada });
  });

  it('writes a line without identities exactly as before', () => {
    const { log, lines } = capture();
    log.info(
      { callId: 'c1', state: 'rejected', attempts: 2, answered: false },
      'call state changed',
    );

    expect(lines()[0]).toMatchObject({
      callId: 'c1',
      state: 'rejected',
      attempts: 2,
      answered: false,
      msg: 'call state changed',
    });
  });
});

describe('callers in log lines with logPii (LOG_PII=1)', () => {
  it('shows display names, user ids and phone numbers as they are', () => {
    const { log, lines } = capture({ logPii: true });
    log.info({ callId: 'c1', source: ada, targets: botTargets }, 'incoming call');
    log.info({ callId: 'c2', source: phoneCaller, displayName: 'Grace Hopper' }, 'incoming call');

    const [first, second] = lines();
    expect(first).toMatchObject({ source: ada, targets: botTargets });
    expect(second).toMatchObject({ source: phoneCaller, displayName: 'Grace Hopper' });
  });
});

describe('credentials in log lines', () => {
  const credentials = {
    authorization: 'Bearer top-level-token',
    token: 'tok-1',
    accessToken: 'access-1',
    clientSecret: 'client-secret-1',
    password: 'hunter2',
    secret: 'secret-1',
    headers: { authorization: 'Bearer header-token', 'content-type': 'application/json' },
    req: { headers: { authorization: 'Bearer req-token' } },
    request: { Authorization: 'Bearer capital-token', password: 'nested-pw' },
    nats: { token: 'nats-token', password: 'nats-pw', secret: 'nats-secret' },
    graph: { accessToken: 'graph-access', clientSecret: 'graph-secret' },
  };
  const leaked = [
    'top-level-token',
    'tok-1',
    'access-1',
    'client-secret-1',
    'hunter2',
    'secret-1',
    'header-token',
    'req-token',
    'capital-token',
    'nested-pw',
    'nats-token',
    'nats-pw',
    'nats-secret',
    'graph-access',
    'graph-secret',
  ];

  for (const logPii of [false, true]) {
    it(`replaces authorization headers, tokens, client secrets and passwords by [redacted] (logPii ${logPii})`, () => {
      const { log, text, lines } = capture({ logPii });
      log.info(credentials, 'credentials');

      for (const value of leaked) expect(text()).not.toContain(value);
      expect(lines()[0]).toMatchObject({
        authorization: '[redacted]',
        token: '[redacted]',
        accessToken: '[redacted]',
        clientSecret: '[redacted]',
        password: '[redacted]',
        secret: '[redacted]',
        headers: { authorization: '[redacted]', 'content-type': 'application/json' },
        req: { headers: { authorization: '[redacted]' } },
        request: { Authorization: '[redacted]', password: '[redacted]' },
        nats: { token: '[redacted]', password: '[redacted]', secret: '[redacted]' },
        graph: { accessToken: '[redacted]', clientSecret: '[redacted]' },
      });
    });
  }
});

describe('the keyed hash', () => {
  it('is "h:" and 12 hex digits, the same for the same value under one key', () => {
    const hash = piiHasher(new Uint8Array(32));
    expect(hash('Ada Lovelace')).toMatch(HASH);
    expect(hash('Ada Lovelace')).toBe(hash('Ada Lovelace'));
    expect(hash('Ada Lovelace')).not.toBe(hash('Ada Lovelace '));
    expect(piiHasher(new Uint8Array(32).fill(1))('Ada Lovelace')).not.toBe(hash('Ada Lovelace'));
  });

  it('hashes strings and numbers anywhere in an identity, keeping booleans, null and the tenant', () => {
    const hash = (value: string) => `<${value}>`;
    expect(
      createPiiSanitizer(hash).identity({
        user: { id: 7, displayName: 'Ada', tenantId: 't' },
        muted: true,
        region: null,
      }),
    ).toEqual({
      user: { id: '<7>', displayName: '<Ada>', tenantId: 't' },
      muted: true,
      region: null,
    });
  });

  it('stops at a cycle instead of walking it for ever', () => {
    const loop: Record<string, unknown> = { displayName: 'Ada' };
    loop.self = loop;
    const { log, text } = capture();
    log.info({ source: loop }, 'a cycle');

    expect(text()).not.toContain('Ada');
    expect(text()).toContain('[redacted]');
  });
});
