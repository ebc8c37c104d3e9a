import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration from the environment', () => {
  it('fills every default from the contract', () => {
    const config = loadConfig({ GRAPH_TOKEN: 'dev-token' });
    expect(config).toMatchObject({
      natsServers: ['nats://127.0.0.1:4222'],
      subjectPrefix: 'call',
      graph: { baseUrl: 'https://graph.microsoft.com', apiVersion: 'v1.0' },
      answerTimeoutMs: 15_000,
      http: { port: 8080 },
      webhook: {
        path: '/api/calling',
        openIdUrl: 'https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration',
        issuers: ['https://api.botframework.com', 'https://graph.microsoft.com'],
      },
      inspect: false,
      collectWhenQuiet: true,
      logLevel: 'info',
    });
  });

  it('turns the quiet-time collection off with COLLECT_WHEN_QUIET=0, and names a bad value', () => {
    expect(loadConfig({ GRAPH_TOKEN: 't', COLLECT_WHEN_QUIET: '0' }).collectWhenQuiet).toBe(false);
    expect(() => loadConfig({ GRAPH_TOKEN: 't', COLLECT_WHEN_QUIET: 'yes' })).toThrow(
      /COLLECT_WHEN_QUIET: must be 1 or 0/,
    );
  });

  it('takes app credentials instead of a static token, and the client id as the webhook audience', () => {
    const config = loadConfig({
      GRAPH_TENANT_ID: 'tenant',
      GRAPH_CLIENT_ID: 'app',
      GRAPH_CLIENT_SECRET: 's3cret',
    });
    expect(config.graph.auth).toMatchObject({ kind: 'clientCredentials', clientId: 'app' });
    expect(config.webhook.appId).toBe('app');
  });

  it('lists every bad variable in one message, naming the variable and the rule', () => {
    let error: unknown;
    try {
      loadConfig({
        NATS_URL: 'http://nats',
        ANSWER_TIMEOUT_MS: '99',
        GRAPH_API_VERSION: 'v2',
        HTTP_PORT: 'eighty',
        SUBJECT_PREFIX: 'call.x',
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual([
      'NATS_URL: must be nats://host:port URLs (got "http://nats")',
      'SUBJECT_PREFIX: must be one NATS subject token (no ".", "*", ">" or white space) (got "call.x")',
      'GRAPH_API_VERSION: must be v1.0 or beta (got "v2")',
      'ANSWER_TIMEOUT_MS: must be a whole number of milliseconds ≥ 100 (got "99")',
      'HTTP_PORT: must be a port number (0-65535) (got "eighty")',
      'GRAPH_TOKEN: is required unless GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET are all set (missing GRAPH_TENANT_ID, GRAPH_CLIENT_ID, GRAPH_CLIENT_SECRET)',
    ]);
    expect((error as Error).message).toContain('invalid configuration:\n  NATS_URL:');
  });

  it('partitions: one by default; PARTITION must name one of PARTITIONS', () => {
    expect(loadConfig({ GRAPH_TOKEN: 't' }).partitions).toEqual({ count: 1, index: 0 });
    expect(loadConfig({ GRAPH_TOKEN: 't', PARTITIONS: '4', PARTITION: '3' }).partitions).toEqual({
      count: 4,
      index: 3,
    });
    expect(() => loadConfig({ GRAPH_TOKEN: 't', PARTITIONS: '2', PARTITION: '2' })).toThrow(
      'PARTITION: must be below PARTITIONS (2): partitions are numbered from 0 (got "2")',
    );
    expect(() => loadConfig({ GRAPH_TOKEN: 't', PARTITIONS: '0' })).toThrow(
      'PARTITIONS: must be a whole number from 1 to 256 (got "0")',
    );
  });

  it('refuses a RETENTION_MS shorter than the answer window and a minute: the call could be decided twice', () => {
    expect(() =>
      loadConfig({ GRAPH_TOKEN: 't', ANSWER_TIMEOUT_MS: '15000', RETENTION_MS: '60000' }),
    ).toThrow(
      'RETENTION_MS: must be at least ANSWER_TIMEOUT_MS + 60000 (75000): a call is kept while its window is open and a minute more, or it could be decided twice (got "60000")',
    );
    expect(
      loadConfig({ GRAPH_TOKEN: 't', ANSWER_TIMEOUT_MS: '15000', RETENTION_MS: '75000' })
        .retentionMs,
    ).toBe(75_000);
  });

  it('never shows a password in a NATS URL, however it is spelled', () => {
    try {
      loadConfig({ GRAPH_TOKEN: 't', NATS_URL: 'nats://user:pa/ss@w@rd@nats.example:4222 x' });
      expect.unreachable('the configuration was accepted');
    } catch (error) {
      const message = (error as Error).message;
      expect(message).toContain('NATS_URL:');
      expect(message).toContain('//***@nats.example:4222');
      expect(message).not.toMatch(/pa\/ss|w@rd/);
    }
  });

  it('never echoes a secret it rejected', () => {
    expect(() => loadConfig({ GRAPH_CLIENT_SECRET: 'hunter2' })).toThrow(ConfigError);
    try {
      loadConfig({ GRAPH_CLIENT_SECRET: 'hunter2' });
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
    }
  });
});
