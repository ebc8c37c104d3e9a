import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nkeys } from '@nats-io/transport-node';

/** A temporary directory to write test files into. */
export interface TempDir {
  readonly dir: string;
  /** Write `contents` to `name` in the directory (mode 0600); its path. */
  write(name: string, contents: string): string;
  dispose(): void;
}

/** A fresh temporary directory (`callgate-<label>-…`). */
export function tempDir(label: string): TempDir {
  const dir = mkdtempSync(join(tmpdir(), `callgate-${label}-`));
  return {
    dir,
    write(name, contents) {
      const path = join(dir, name);
      writeFileSync(path, contents, { mode: 0o600 });
      return path;
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);

/** A user nkey made at test time: the public key the server lists, the seed the client signs with. */
export interface UserNkey {
  readonly publicKey: string;
  readonly seed: string;
}

/** A fresh user nkey pair. */
export function userNkey(): UserNkey {
  const pair = nkeys.createUser();
  return { publicKey: pair.getPublicKey(), seed: text(pair.getSeed()) };
}

/** A `nats-server` configuration that admits only the user whose public key is `publicKey`. */
export function nkeyServerConfig(publicKey: string): string {
  return `authorization {\n  users = [\n    { nkey: ${publicKey} }\n  ]\n}\n`;
}

const base64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** A NATS JWT (`ed25519-nkey`) with `claims`, issued and signed by `issuer`. */
function natsJwt(claims: Record<string, unknown>, issuer: nkeys.KeyPair): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const payload = base64url(
    JSON.stringify({
      ...claims,
      jti: randomBytes(16).toString('hex').toUpperCase(),
      iat: Math.floor(Date.now() / 1000),
      iss: issuer.getPublicKey(),
    }),
  );
  const signature = issuer.sign(new TextEncoder().encode(`${header}.${payload}`));
  return `${header}.${payload}.${base64url(signature)}`;
}

/** No limits on core NATS. */
const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};
/** JetStream enabled, without limits (never for the system account). */
const JETSTREAM = { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 };

function accountJwt(
  account: nkeys.KeyPair,
  operator: nkeys.KeyPair,
  name: string,
  limits: Record<string, number | boolean>,
): string {
  return natsJwt(
    { sub: account.getPublicKey(), name, nats: { limits, type: 'account', version: 2 } },
    operator,
  );
}

/** A `.creds` file's text, as `nsc` writes it: the user's JWT, then its seed. */
function credsFile(account: nkeys.KeyPair): { creds: string; userJwt: string; seed: string } {
  const user = nkeys.createUser();
  const userJwt = natsJwt(
    {
      sub: user.getPublicKey(),
      name: 'callgate',
      nats: { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user', version: 2 },
    },
    account,
  );
  const seed = text(user.getSeed());
  const creds = [
    '-----BEGIN NATS USER JWT-----',
    userJwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    seed,
    '------END USER NKEY SEED------',
    '',
    '*************************************************************',
    '',
  ].join('\n');
  return { creds, userJwt, seed };
}

/** Decentralized (JWT) authentication made at test time, without `nsc`. */
export interface DecentralizedAuth {
  /** `nats-server` configuration: the operator, a system account and one account, preloaded. */
  readonly serverConfig: string;
  /** A creds file for a user of the account the server trusts. */
  readonly creds: string;
  /** The secrets inside `creds`, which must never be logged. */
  readonly userJwt: string;
  readonly seed: string;
  /** A creds file for a user of an account signed by another operator. */
  readonly strangerCreds: string;
}

/**
 * An operator, a system account and an application account (JetStream
 * enabled) as JWTs signed with nkeys made now, a memory resolver preloaded
 * with the accounts, and creds for one user.
 */
export function decentralizedAuth(): DecentralizedAuth {
  const operator = nkeys.createOperator();
  const system = nkeys.createAccount();
  const account = nkeys.createAccount();
  const operatorJwt = natsJwt(
    {
      sub: operator.getPublicKey(),
      name: 'callgate-test-operator',
      nats: { type: 'operator', version: 2, system_account: system.getPublicKey() },
    },
    operator,
  );
  const serverConfig = [
    `operator: "${operatorJwt}"`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${system.getPublicKey()}: "${accountJwt(system, operator, 'SYS', UNLIMITED)}"`,
    `  ${account.getPublicKey()}: "${accountJwt(account, operator, 'callgate', { ...UNLIMITED, ...JETSTREAM })}"`,
    '}',
    '',
  ].join('\n');
  const { creds, userJwt, seed } = credsFile(account);
  const stranger = credsFile(nkeys.createAccount());
  return { serverConfig, creds, userJwt, seed, strangerCreds: stranger.creds };
}
