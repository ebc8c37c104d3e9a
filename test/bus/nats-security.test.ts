import { type NatsConnection, nkeys } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, NatsConnectError, type NatsConnectOptions } from '../../src/bus/nats.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createLogger, type Log } from '../../src/log.js';
import { createGraphEmulator, type GraphEmulator } from '../../src/tools/emulator/emulator.js';
import { serviceEnv } from '../support/call-bus.js';
import { killAllCallgates, spawnCallgate, startCallgate } from '../support/callgate-process.js';
import {
  type DecentralizedAuth,
  decentralizedAuth,
  nkeyServerConfig,
  type TempDir,
  tempDir,
  type UserNkey,
  userNkey,
} from '../support/nats-auth.js';
import { type NatsServer, startNatsServer } from '../support/nats-server.js';
import { makeTestCertificates, type TestCertificates } from '../support/tls-certs.js';

/**
 * NATS_CREDS, NATS_NKEY, NATS_USER/NATS_PASSWORD, NATS_TOKEN and NATS_TLS_*,
 * from the environment to a real `nats-server` started here with
 * authentication and TLS (keys, JWTs and certificates made at test time).
 */

const PASSWORD = 'pw-Kq7-never-logged';
const TOKEN = 'tok-Zr4-never-logged';

let files: TempDir;
let certs: TestCertificates;
let nkey: UserNkey;
let jwtAuth: DecentralizedAuth;
/** Paths of the secret-holding files. */
let paths: { seed: string; otherSeed: string; creds: string; strangerCreds: string };
const servers: NatsServer[] = [];
const connections: NatsConnection[] = [];

beforeAll(async () => {
  files = tempDir('nats-security');
  certs = await makeTestCertificates();
  nkey = userNkey();
  jwtAuth = decentralizedAuth();
  paths = {
    seed: files.write('user.nk', `${nkey.seed}\n`),
    otherSeed: files.write('other.nk', userNkey().seed),
    creds: files.write('user.creds', jwtAuth.creds),
    strangerCreds: files.write('stranger.creds', jwtAuth.strangerCreds),
  };
});

afterEach(async () => {
  await Promise.all(connections.splice(0).map((nc) => nc.close()));
});

afterAll(async () => {
  await killAllCallgates();
  await Promise.all(servers.map((server) => server.dispose()));
  certs?.dispose();
  files?.dispose();
});

/** A JetStream `nats-server` with extra arguments, stopped after the file. */
async function server(args: string[]): Promise<NatsServer> {
  const started = await startNatsServer({ args });
  servers.push(started);
  return started;
}

/** A logger at `trace` whose every line is kept, to search for secrets. */
function capturedLog(): { log: Log; text: () => string } {
  const lines: string[] = [];
  const log = createLogger({ level: 'trace', destination: { write: (line) => lines.push(line) } });
  return { log, text: () => lines.join('') };
}

/** The values that must never appear in a log line or an error message. */
const secrets = (): string[] => [PASSWORD, TOKEN, nkey.seed, jwtAuth.seed, jwtAuth.userJwt];

/**
 * `loadConfig(env)` then `connectNats` with what it read: the variables'
 * whole path. Resolves to the connection or the error, and the log either way.
 */
async function connectWith(
  env: Record<string, string>,
  options: Pick<NatsConnectOptions, 'waitForServer' | 'attemptTimeoutMs'> = {},
): Promise<{ nc?: NatsConnection; error?: unknown; logs: string; elapsedMs: number }> {
  const config = loadConfig({ GRAPH_TOKEN: 'unused', ...env });
  const { log, text } = capturedLog();
  const started = Date.now();
  try {
    const { nc } = await connectNats({
      servers: config.nats.servers,
      auth: config.nats.auth,
      tls: config.nats.tls,
      name: 'callgate-security-test',
      log,
      ...options,
    });
    connections.push(nc);
    return { nc, logs: text(), elapsedMs: Date.now() - started };
  } catch (error) {
    return { error, logs: text(), elapsedMs: Date.now() - started };
  }
}

/** The connection carries messages: a request answered through the server. */
async function roundTrip(nc: NatsConnection | undefined): Promise<string> {
  if (!nc) throw new Error('not connected');
  const subject = `echo.${Math.random().toString(36).slice(2)}`;
  nc.subscribe(subject, {
    callback: (_error, msg) => {
      msg.respond(`pong:${msg.string()}`);
    },
  });
  await nc.flush();
  return (await nc.request(subject, 'ping', { timeout: 2_000 })).string();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.message}\n${String(error.cause ?? '')}` : String(error);
}

function expectNoSecrets(...texts: string[]): void {
  for (const text of texts) {
    for (const secret of secrets()) expect(text).not.toContain(secret);
  }
}

function configProblems(env: Record<string, string>): { problems: string[]; message: string } {
  try {
    loadConfig({ GRAPH_TOKEN: 'unused', ...env });
  } catch (error) {
    if (error instanceof ConfigError) return { problems: error.problems, message: error.message };
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('NATS security variables', () => {
  it('default to no authentication and no TLS, and keep natsServers for existing callers', () => {
    const config = loadConfig({ GRAPH_TOKEN: 'unused', NATS_URL: 'nats://a:4222,nats://b:4222' });

    expect(config.nats).toEqual({
      servers: ['nats://a:4222', 'nats://b:4222'],
      auth: { kind: 'none' },
      tls: undefined,
    });
    expect(config.natsServers).toEqual(config.nats.servers);
  });

  it('read a user and password, a token, a creds file, an nkey seed file and the TLS files', () => {
    const read = (env: Record<string, string>) => loadConfig({ GRAPH_TOKEN: 'unused', ...env });

    expect(read({ NATS_USER: 'callgate', NATS_PASSWORD: PASSWORD }).nats.auth).toEqual({
      kind: 'userPassword',
      user: 'callgate',
      password: PASSWORD,
    });
    expect(read({ NATS_TOKEN: TOKEN }).nats.auth).toEqual({ kind: 'token', token: TOKEN });
    expect(read({ NATS_CREDS: paths.creds }).nats.auth).toEqual({
      kind: 'creds',
      credsFile: paths.creds,
    });
    expect(read({ NATS_NKEY: paths.seed }).nats.auth).toEqual({
      kind: 'nkey',
      seedFile: paths.seed,
    });
    expect(read({ NATS_TLS_CA: certs.caFile }).nats.tls).toEqual({ caFile: certs.caFile });
    expect(
      read({
        NATS_TLS_CA: certs.caFile,
        NATS_TLS_CERT: certs.clientCertFile,
        NATS_TLS_KEY: certs.clientKeyFile,
      }).nats.tls,
    ).toEqual({
      caFile: certs.caFile,
      certFile: certs.clientCertFile,
      keyFile: certs.clientKeyFile,
    });
  });

  it('refuse two ways to authenticate in one message naming them, without echoing a secret', () => {
    const { problems, message } = configProblems({
      NATS_CREDS: paths.creds,
      NATS_TOKEN: TOKEN,
      NATS_USER: 'callgate',
      NATS_PASSWORD: PASSWORD,
    });

    expect(problems).toEqual([
      'NATS_CREDS, NATS_USER, NATS_PASSWORD, NATS_TOKEN: only one way to authenticate to NATS may be set (one of NATS_CREDS, NATS_NKEY, NATS_USER with NATS_PASSWORD, NATS_TOKEN)',
    ]);
    expectNoSecrets(message);
  });

  it('refuse half a pair: a user without a password, a password without a user, a certificate without its key', () => {
    expect(configProblems({ NATS_USER: 'callgate' }).problems).toEqual([
      'NATS_PASSWORD: is required with NATS_USER (set both or neither)',
    ]);
    const { problems, message } = configProblems({
      NATS_PASSWORD: PASSWORD,
      NATS_TLS_CERT: certs.clientCertFile,
    });
    expect(problems).toEqual([
      'NATS_USER: is required with NATS_PASSWORD (set both or neither)',
      'NATS_TLS_KEY: is required with NATS_TLS_CERT (set both or neither)',
    ]);
    expect(configProblems({ NATS_TLS_KEY: certs.clientKeyFile }).problems).toEqual([
      'NATS_TLS_CERT: is required with NATS_TLS_KEY (set both or neither)',
    ]);
    expectNoSecrets(message);
  });

  it('refuse an nkey seed given in place of the path of its file, without echoing it', () => {
    const { problems, message } = configProblems({ NATS_NKEY: nkey.seed });

    expect(problems).toEqual([
      'NATS_NKEY: must be the path of a file holding the seed, not the seed itself (got a value)',
    ]);
    expectNoSecrets(message);
  });

  it('refuse missing files and files of the wrong kind, every variable in one message', () => {
    const notACert = files.write('not-a-cert.pem', 'hello\n');
    const accountSeed = files.write(
      'account.nk',
      new TextDecoder().decode(nkeys.createAccount().getSeed()),
    );
    const missing = `${files.dir}/missing.pem`;

    const { problems, message } = configProblems({
      NATS_CREDS: paths.seed,
      NATS_TLS_CA: notACert,
      NATS_TLS_CERT: missing,
      NATS_TLS_KEY: certs.clientCertFile,
    });
    expect(problems).toEqual([
      `NATS_CREDS: must be the path of a readable .creds file (a user JWT and its nkey seed) (got "${paths.seed}")`,
      `NATS_TLS_CA: must be the path of a readable PEM certificate file (got "${notACert}")`,
      `NATS_TLS_CERT: must be the path of a readable PEM certificate file (got "${missing}")`,
      `NATS_TLS_KEY: must be the path of a readable PEM private key file (got "${certs.clientCertFile}")`,
    ]);
    expect(configProblems({ NATS_NKEY: accountSeed }).problems).toEqual([
      'NATS_NKEY: must be the path of a readable file holding a user nkey seed (SU…) (got a value)',
    ]);
    expect(configProblems({ NATS_NKEY: files.dir }).problems).toHaveLength(1);
    expectNoSecrets(message);
  });

  it('never echo key material pasted where a path belongs, nor a password inside NATS_URL', () => {
    const { message } = configProblems({
      NATS_CREDS: jwtAuth.creds,
      NATS_URL: `http://callgate:${PASSWORD}@nats:4222`,
    });

    expect(message).toContain('NATS_CREDS: must be the path of a readable .creds file');
    expect(message).toContain(
      'NATS_URL: must be nats://host:port URLs (got "http://***@nats:4222")',
    );
    expectNoSecrets(message);
  });
});

describe('NATS with a user and password', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await server(['--user', 'callgate', '--pass', PASSWORD]);
  });

  it('connects with the right pair, and logs neither the password nor anything like it', async () => {
    const result = await connectWith({
      NATS_URL: nats.url,
      NATS_USER: 'callgate',
      NATS_PASSWORD: PASSWORD,
    });

    expect(await roundTrip(result.nc)).toBe('pong:ping');
    expect(result.logs).toContain('"auth":"userPassword"');
    expectNoSecrets(result.logs);
  });

  it('fails at once with a wrong password, saying the server refused it and never showing it', async () => {
    const wrong = 'wrong-Pw9-never-logged';
    const result = await connectWith({
      NATS_URL: nats.url,
      NATS_USER: 'callgate',
      NATS_PASSWORD: wrong,
    });

    expect(result.error).toBeInstanceOf(NatsConnectError);
    expect(messageOf(result.error)).toBe(
      `could not connect to NATS at ${nats.url} with a user and password (NATS_USER, NATS_PASSWORD): Authorization Violation\nAuthorizationError: Authorization Violation`,
    );
    expect(result.elapsedMs).toBeLessThan(5_000);
    expectNoSecrets(messageOf(result.error), result.logs);
    expect(`${messageOf(result.error)}${result.logs}`).not.toContain(wrong);
  });

  it('fails at once with no credentials at all', async () => {
    const result = await connectWith({ NATS_URL: nats.url });

    expect(messageOf(result.error)).toMatch(/with no authentication: Authorization Violation/);
  });
});

describe('NATS with a token', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await server(['--auth', TOKEN]);
  });

  it('connects with the right token', async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_TOKEN: TOKEN });

    expect(await roundTrip(result.nc)).toBe('pong:ping');
    expectNoSecrets(result.logs);
  });

  it('fails at once with a wrong token, never showing either token', async () => {
    const wrong = 'wrong-Tk2-never-logged';
    const result = await connectWith({ NATS_URL: nats.url, NATS_TOKEN: wrong });

    expect(messageOf(result.error)).toMatch(/with a token \(NATS_TOKEN\): Authorization Violation/);
    expectNoSecrets(messageOf(result.error), result.logs);
    expect(`${messageOf(result.error)}${result.logs}`).not.toContain(wrong);
  });
});

describe('NATS with an nkey', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await server(['-c', files.write('nkey.conf', nkeyServerConfig(nkey.publicKey))]);
  });

  it('connects signing the server nonce with the seed read from NATS_NKEY', async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_NKEY: paths.seed });

    expect(await roundTrip(result.nc)).toBe('pong:ping');
    expect(result.logs).toContain('"auth":"nkey"');
    expectNoSecrets(result.logs);
  });

  it("fails at once with another user's seed", async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_NKEY: paths.otherSeed });

    expect(messageOf(result.error)).toMatch(/with an nkey \(NATS_NKEY\): Authorization Violation/);
    expectNoSecrets(messageOf(result.error), result.logs);
  });
});

describe('NATS with a creds file (decentralized JWT authentication)', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await server(['-c', files.write('operator.conf', jwtAuth.serverConfig)]);
  });

  it('connects with the user JWT and seed of NATS_CREDS', async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_CREDS: paths.creds });

    expect(await roundTrip(result.nc)).toBe('pong:ping');
    expect(result.logs).toContain('"auth":"creds"');
    expectNoSecrets(result.logs);
  });

  it('fails at once with creds of an account the server does not trust', async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_CREDS: paths.strangerCreds });

    expect(messageOf(result.error)).toMatch(
      /with a creds file \(NATS_CREDS\): Authorization Violation/,
    );
  });
});

describe('NATS over TLS', () => {
  let nats: NatsServer;
  let plain: NatsServer;
  beforeAll(async () => {
    nats = await server([
      '--tls',
      '--tlscert',
      certs.serverCertFile,
      '--tlskey',
      certs.serverKeyFile,
    ]);
    plain = await server([]);
  });

  it('connects trusting the test CA of NATS_TLS_CA, by address and by name', async () => {
    const byAddress = await connectWith({ NATS_URL: nats.url, NATS_TLS_CA: certs.caFile });
    const byName = await connectWith({
      NATS_URL: `tls://localhost:${nats.port}`,
      NATS_TLS_CA: certs.caFile,
    });

    expect(await roundTrip(byAddress.nc)).toBe('pong:ping');
    expect(await roundTrip(byName.nc)).toBe('pong:ping');
    expect(byAddress.logs).toContain('"tls":true');
  });

  it('fails at once without the CA, naming the certificate problem', async () => {
    const result = await connectWith({ NATS_URL: nats.url });

    expect(result.error).toBeInstanceOf(NatsConnectError);
    expect(messageOf(result.error)).toMatch(
      /with no authentication: unable to verify the first certificate \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)/,
    );
    expect(result.elapsedMs).toBeLessThan(5_000);
  });

  it('fails at once trusting another CA', async () => {
    const result = await connectWith({ NATS_URL: nats.url, NATS_TLS_CA: certs.otherCaFile });

    expect(messageOf(result.error)).toMatch(/over TLS: unable to verify the first certificate/);
  });

  it('insists on TLS once NATS_TLS_CA is set, even when the server offers none', async () => {
    const result = await connectWith({ NATS_URL: plain.url, NATS_TLS_CA: certs.caFile });

    expect(messageOf(result.error)).toMatch(/over TLS: server does not support 'tls'/);
  });
});

describe('NATS over mutual TLS', () => {
  let nats: NatsServer;
  beforeAll(async () => {
    nats = await server([
      '--tlsverify',
      '--tlscert',
      certs.serverCertFile,
      '--tlskey',
      certs.serverKeyFile,
      '--tlscacert',
      certs.caFile,
    ]);
  });

  it('connects with the client certificate and key of NATS_TLS_CERT and NATS_TLS_KEY', async () => {
    const result = await connectWith({
      NATS_URL: nats.url,
      NATS_TLS_CA: certs.caFile,
      NATS_TLS_CERT: certs.clientCertFile,
      NATS_TLS_KEY: certs.clientKeyFile,
    });

    expect(await roundTrip(result.nc)).toBe('pong:ping');
  });

  it('is refused without a client certificate', async () => {
    const result = await connectWith(
      { NATS_URL: nats.url, NATS_TLS_CA: certs.caFile },
      { waitForServer: false, attemptTimeoutMs: 2_000 },
    );

    expect(result.error).toBeInstanceOf(NatsConnectError);
    expect(result.nc).toBeUndefined();
  });
});

describe('NATS that is not up yet', () => {
  it('is waited for, the wait logged once, and the connection made when it comes up', async () => {
    const later = await server(['--user', 'callgate', '--pass', PASSWORD]);
    await later.stop();
    const pending = connectWith({
      NATS_URL: later.url,
      NATS_USER: 'callgate',
      NATS_PASSWORD: PASSWORD,
    });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await later.start();
    const result = await pending;

    expect(await roundTrip(result.nc)).toBe('pong:ping');
    expect(result.logs.match(/NATS not reachable yet; retrying/g)).toHaveLength(1);
    expect(result.logs).toContain('"reason":"connection refused"');
    expectNoSecrets(result.logs);
  });
});

describe('callgate serve against a secured NATS', () => {
  let graph: GraphEmulator;
  let run = 0;
  beforeAll(async () => {
    graph = await createGraphEmulator();
  });
  afterAll(async () => {
    await killAllCallgates();
    await graph?.close();
  });

  /** `callgate serve` at `debug` level, with `extra` on top of the usual test environment. */
  const envFor = (natsUrl: string, extra: Record<string, string>) =>
    serviceEnv({
      natsUrl,
      graphUrl: graph.url,
      prefix: `natssec${++run}`,
      answerTimeoutMs: 4_000,
      extra: { LOG_LEVEL: 'debug', ...extra },
    });

  it.each([
    {
      name: 'a user and password over TLS',
      args: () => [
        '--user',
        'callgate',
        '--pass',
        PASSWORD,
        '--tls',
        '--tlscert',
        certs.serverCertFile,
        '--tlskey',
        certs.serverKeyFile,
      ],
      env: () => ({ NATS_USER: 'callgate', NATS_PASSWORD: PASSWORD, NATS_TLS_CA: certs.caFile }),
    },
    { name: 'a token', args: () => ['--auth', TOKEN], env: () => ({ NATS_TOKEN: TOKEN }) },
    {
      name: 'a creds file',
      args: () => ['-c', files.write('serve-operator.conf', jwtAuth.serverConfig)],
      env: () => ({ NATS_CREDS: paths.creds }),
    },
  ])(
    'becomes ready with $name and its logs hold neither the password, the token nor a key',
    async ({ args, env }) => {
      const nats = await server(args());
      const service = await startCallgate(envFor(nats.url, env()));
      service.child.kill('SIGTERM');
      const exit = await service.exited;

      expect(exit).toEqual({ code: 0, signal: null });
      expect(service.stdout()).toContain('connected to NATS');
      expectNoSecrets(service.stdout(), service.stderr());
    },
  );

  it('exits 1 when NATS refuses its password, saying so without showing the password', async () => {
    const nats = await server(['--user', 'callgate', '--pass', PASSWORD]);
    const wrong = 'wrong-Pw5-never-logged';
    const service = await spawnCallgate(
      envFor(nats.url, { NATS_USER: 'callgate', NATS_PASSWORD: wrong }),
    );
    const exit = await service.exited;

    expect(exit).toEqual({ code: 1, signal: null });
    expect(service.stderr()).toContain('could not connect to NATS at nats://127.0.0.1:');
    expect(service.stderr()).toContain('Authorization Violation');
    expectNoSecrets(service.stdout(), service.stderr());
    expect(`${service.stdout()}${service.stderr()}`).not.toContain(wrong);
  });
});
