import { createPrivateKey, X509Certificate } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { credsAuthenticator, nkeys } from '@nats-io/transport-node';
import { z } from 'zod';

/**
 * The service's configuration, parsed once from the environment. Every bad
 * variable is reported in one message; the entry point exits 2 on it.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOKEN = /^[^.*>\s]+$/;
/** Variables whose values never appear in an error. */
const SECRETS = new Set([
  'GRAPH_CLIENT_SECRET',
  'GRAPH_TOKEN',
  'NATS_PASSWORD',
  'NATS_TOKEN',
  'LIVE_TOKEN',
  // A path, but someone may paste the seed itself: never shown either way.
  'NATS_NKEY',
]);
/** How much longer than the answer window a call must be kept (RETENTION_MS). */
export const RETENTION_MARGIN_MS = 60_000;
/** The ways to authenticate to NATS, of which at most one may be set. */
const NATS_AUTH_VARIABLES = [
  ['NATS_CREDS'],
  ['NATS_NKEY'],
  ['NATS_USER', 'NATS_PASSWORD'],
  ['NATS_TOKEN'],
] as const;
/** Pairs that go together: both or neither. */
const NATS_PAIRS = [
  ['NATS_USER', 'NATS_PASSWORD'],
  ['NATS_TLS_CERT', 'NATS_TLS_KEY'],
] as const;

const wholeNumber = (rule: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .regex(/^\d+$/, rule)
    .transform(Number)
    .pipe(z.number().int().min(min, rule).max(max, rule));

const list = (item: z.ZodType<string, string>, rule: string) =>
  z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((part) => part.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item, { error: rule }).min(1, rule));

/** The file's contents, or `undefined` when it is not a readable regular file. */
function readable(path: string): Buffer | undefined {
  try {
    accessSync(path, constants.R_OK);
    return statSync(path).isFile() ? readFileSync(path) : undefined;
  } catch {
    return undefined;
  }
}

/** A path to a readable file whose contents pass `check` (which may throw). */
const filePath = (rule: string, check: (contents: Buffer) => boolean = () => true) =>
  z.string().refine((path) => {
    const contents = readable(path);
    if (!contents) return false;
    try {
      return check(contents);
    } catch {
      return false;
    }
  }, rule);

/** A user nkey seed (`SU…`) as the NATS client wants it: its bytes, trimmed. */
export function nkeySeed(contents: Uint8Array | string): Uint8Array {
  return new TextEncoder().encode(Buffer.from(contents).toString('utf8').trim());
}

/** What an nkey seed looks like: `S`, its kind, then base32. */
const SEED = /^\s*S[A-Z][A-Z2-7]{40,}\s*$/;

const isUserSeed = (seed: Uint8Array): boolean =>
  nkeys.fromSeed(seed).getPublicKey().startsWith('U');

const natsUrl = z
  .string()
  .regex(/^(nats|tls|ws|wss):\/\/[^\s]+$|^[^\s:/]+(:\d+)?$/, 'must be nats://host:port URLs');

const Env = z.object({
  NATS_URL: list(natsUrl, 'must be one or more nats://host:port URLs, comma-separated').default([
    'nats://127.0.0.1:4222',
  ]),
  NATS_CREDS: filePath(
    'must be the path of a readable .creds file (a user JWT and its nkey seed)',
    // The client's own parser: a file it would refuse to use is refused here.
    (contents) => credsAuthenticator(contents)('') !== undefined,
  ).optional(),
  NATS_NKEY: z
    .string()
    .superRefine((value, ctx) => {
      if (SEED.test(value)) {
        ctx.addIssue('must be the path of a file holding the seed, not the seed itself');
        return;
      }
      const contents = readable(value);
      let valid = false;
      try {
        valid = contents !== undefined && isUserSeed(nkeySeed(contents));
      } catch {
        valid = false;
      }
      if (!valid)
        ctx.addIssue('must be the path of a readable file holding a user nkey seed (SU…)');
    })
    .optional(),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  NATS_TOKEN: z.string().min(1).optional(),
  NATS_TLS_CA: filePath('must be the path of a readable PEM certificate file', (contents) =>
    Boolean(new X509Certificate(contents)),
  ).optional(),
  NATS_TLS_CERT: filePath('must be the path of a readable PEM certificate file', (contents) =>
    Boolean(new X509Certificate(contents)),
  ).optional(),
  NATS_TLS_KEY: filePath('must be the path of a readable PEM private key file', (contents) =>
    Boolean(createPrivateKey(contents)),
  ).optional(),
  SUBJECT_PREFIX: z
    .string()
    .regex(TOKEN, 'must be one NATS subject token (no ".", "*", ">" or white space)')
    .default('call'),
  NOTIFICATIONS_SUBJECT: z
    .string()
    .regex(/^[^*>\s]+$/, 'must be a NATS subject without wildcards')
    .default('graph.notifications'),
  GRAPH_BASE_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .transform((url) => url.replace(/\/+$/, ''))
    .default('https://graph.microsoft.com'),
  GRAPH_API_VERSION: z.enum(['v1.0', 'beta'], { error: 'must be v1.0 or beta' }).default('v1.0'),
  GRAPH_TENANT_ID: z.string().min(1).optional(),
  GRAPH_CLIENT_ID: z.string().min(1).optional(),
  GRAPH_CLIENT_SECRET: z.string().min(1).optional(),
  GRAPH_AUTHORITY_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://login.microsoftonline.com'),
  GRAPH_TOKEN_ENDPOINT: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  GRAPH_TOKEN: z.string().min(1).optional(),
  ANSWER_TIMEOUT_MS: wholeNumber('must be a whole number of milliseconds ≥ 100', 100).default(
    15_000,
  ),
  HTTP_PORT: wholeNumber('must be a port number (0-65535)', 0, 65_535).default(8080),
  HTTP_HOST: z.string().min(1).default('0.0.0.0'),
  WEBHOOK_PATH: z
    .string()
    .regex(/^\/\S*$/, 'must be a path starting with "/"')
    .default('/api/calling'),
  WEBHOOK_APP_ID: z.string().min(1).optional(),
  WEBHOOK_OPENID_URL: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .default('https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration'),
  WEBHOOK_ISSUERS: list(z.string().min(1), 'must be one or more issuers, comma-separated').default([
    'https://api.botframework.com',
    'https://graph.microsoft.com',
  ]),
  WEBHOOK_TENANTS: list(z.string().min(1), 'must be tenant ids, comma-separated').optional(),
  WEBHOOK_MAX_BYTES: wholeNumber('must be a whole number of bytes ≥ 1024', 1_024).default(
    1_048_576,
  ),
  INSPECT: z
    .enum(['0', '1', 'true', 'false', ''], { error: 'must be 1 or 0' })
    .transform((v) => v === '1' || v === 'true')
    .default(false),
  INSPECT_PORT: wholeNumber('must be a port number (1-65535)', 1, 65_535).default(4242),
  COLLECT_WHEN_QUIET: z
    .enum(['0', '1', 'true', 'false', ''], { error: 'must be 1 or 0' })
    .transform((v) => v !== '0' && v !== 'false')
    .default(true),
  INSPECT_HOST: z.string().min(1).default('127.0.0.1'),
  LIVE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  LOG_PII: z
    .enum(['0', '1', 'true', 'false', ''], { error: 'must be 1 or 0' })
    .transform((v) => v === '1' || v === 'true')
    .default(false),
  RETENTION_MS: wholeNumber('must be a whole number of milliseconds ≥ 1000', 1_000).default(
    3_600_000,
  ),
  SHUTDOWN_TIMEOUT_MS: wholeNumber('must be a whole number of milliseconds ≥ 100', 100).default(
    8_000,
  ),
  PARTITIONS: wholeNumber('must be a whole number from 1 to 256', 1, 256).default(1),
  PARTITION: wholeNumber('must be a whole number from 0 to 255', 0, 255).default(0),
  STREAM_REPLICAS: wholeNumber('must be a whole number from 1 to 5', 1, 5).default(1),
});

/** Every environment variable the service reads. */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(Env.shape);

/**
 * How callgate proves who it is to NATS: at most one way, chosen by which
 * variables are set. Files are named, not read: the client reads them at each
 * (re)connection, so a rotated creds or seed file is picked up.
 */
export type NatsAuth =
  | { readonly kind: 'none' }
  /** `NATS_CREDS`: a `.creds` file (user JWT and nkey seed), decentralized auth. */
  | { readonly kind: 'creds'; readonly credsFile: string }
  /** `NATS_NKEY`: a file holding a user nkey seed (`SU…`), never the seed itself. */
  | { readonly kind: 'nkey'; readonly seedFile: string }
  /** `NATS_USER` and `NATS_PASSWORD`. */
  | { readonly kind: 'userPassword'; readonly user: string; readonly password: string }
  /** `NATS_TOKEN`. */
  | { readonly kind: 'token'; readonly token: string };

/**
 * TLS towards NATS (`NATS_TLS_CA`, `NATS_TLS_CERT`, `NATS_TLS_KEY`): with any
 * of them set, the connection must be TLS. Without them the client still
 * upgrades when the server asks for TLS, trusting the system's CAs.
 */
export interface NatsTls {
  /** PEM file of the CA(s) that signed the server's certificate. */
  readonly caFile?: string;
  /** PEM client certificate, for servers that verify clients (mutual TLS). */
  readonly certFile?: string;
  /** PEM private key of the client certificate. */
  readonly keyFile?: string;
}

export interface Config {
  /** The same list as `nats.servers`, for existing callers. */
  readonly natsServers: string[];
  readonly nats: {
    readonly servers: string[];
    readonly auth: NatsAuth;
    readonly tls: NatsTls | undefined;
  };
  readonly subjectPrefix: string;
  readonly notificationsSubject: string;
  readonly graph: {
    readonly baseUrl: string;
    readonly apiVersion: 'v1.0' | 'beta';
    readonly auth:
      | { readonly kind: 'token'; readonly token: string }
      | {
          readonly kind: 'clientCredentials';
          readonly tenantId: string;
          readonly clientId: string;
          readonly clientSecret: string;
          readonly authorityUrl: string;
          readonly tokenEndpoint: string | undefined;
        };
  };
  readonly answerTimeoutMs: number;
  readonly http: { readonly port: number; readonly host: string };
  readonly webhook: {
    readonly path: string;
    readonly appId: string | undefined;
    readonly openIdUrl: string;
    readonly issuers: string[];
    /** When set, the only tenants whose notifications are accepted. */
    readonly tenants: string[] | undefined;
    readonly maxBytes: number;
  };
  readonly inspect: boolean;
  /** `COLLECT_WHEN_QUIET`: a full collection of the heap when the process went quiet after a burst. */
  readonly collectWhenQuiet: boolean;
  /** `LIVE_TOKEN`: when set, the live page and its event stream ask for it. */
  readonly liveToken: string | undefined;
  /** Where the Stately inspector's relay listens with `INSPECT=1` (loopback by default). */
  readonly inspector: { readonly port: number; readonly host: string };
  readonly logLevel: (typeof LOG_LEVELS)[number];
  /** `LOG_PII=1`: callers' identities shown in logs as they are, not hashed. */
  readonly logPii: boolean;
  readonly retentionMs: number;
  readonly shutdownTimeoutMs: number;
  /** `PARTITIONS` > 1: this instance consumes one partition of the calls (see the README). */
  readonly partitions: { readonly count: number; readonly index: number };
  /** `STREAM_REPLICAS`: replicas of the stream and the buckets callgate creates (3 on a three-node cluster). */
  readonly streamReplicas: number;
}

/** Thrown with every problem listed, one per line ("NAME: rule"). */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'CONFIG_INVALID';
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/**
 * How a rejected value is quoted: never a secret, never the password in a
 * URL, never what looks like key material pasted where a path belongs.
 */
function shown(name: string, value: unknown): string {
  if (SECRETS.has(name)) return 'a value';
  if (typeof value !== 'string') return JSON.stringify(value ?? null);
  if (/-----|\n|\bS[A-Z][A-Z2-7]{40,}|\beyJ/.test(value)) return 'a value';
  // Everything between `//` and the last `@` of a URL is credentials, however spelled.
  return JSON.stringify(value.replace(/\/\/[^\s,]*@/g, '//***@'));
}

/** Half pairs and more than one way to authenticate, by the variables' presence. */
function natsProblems(present: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const [a, b] of NATS_PAIRS) {
    if (present[a] && !present[b])
      problems.push(`${b}: is required with ${a} (set both or neither)`);
    if (present[b] && !present[a])
      problems.push(`${a}: is required with ${b} (set both or neither)`);
  }
  const chosen = NATS_AUTH_VARIABLES.map((names) => names.filter((name) => present[name])).filter(
    (names) => names.length > 0,
  );
  if (chosen.length > 1) {
    const ways = NATS_AUTH_VARIABLES.map((names) => names.join(' with ')).join(', ');
    problems.push(
      `${chosen.flat().join(', ')}: only one way to authenticate to NATS may be set (one of ${ways})`,
    );
  }
  return problems;
}

function natsAuth(e: z.output<typeof Env>): NatsAuth {
  if (e.NATS_CREDS) return { kind: 'creds', credsFile: e.NATS_CREDS };
  if (e.NATS_NKEY) return { kind: 'nkey', seedFile: e.NATS_NKEY };
  if (e.NATS_USER && e.NATS_PASSWORD) {
    return { kind: 'userPassword', user: e.NATS_USER, password: e.NATS_PASSWORD };
  }
  if (e.NATS_TOKEN) return { kind: 'token', token: e.NATS_TOKEN };
  return { kind: 'none' };
}

/**
 * @example
 * const config = loadConfig(process.env); // throws ConfigError listing every bad variable
 */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const present = Object.fromEntries(
    Object.keys(Env.shape)
      .filter((key) => env[key] !== undefined && env[key] !== '')
      .map((key) => [key, env[key]]),
  );
  const result = Env.safeParse(present);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '(environment)');
        return `${name}: ${issue.message} (got ${shown(name, present[name])})`;
      });
  problems.push(...natsProblems(present));
  const credentials = ['GRAPH_TENANT_ID', 'GRAPH_CLIENT_ID', 'GRAPH_CLIENT_SECRET'];
  const missing = credentials.filter((name) => !present[name]);
  if (!present.GRAPH_TOKEN && missing.length > 0) {
    problems.push(
      `GRAPH_TOKEN: is required unless ${credentials.join(', ')} are all set (missing ${missing.join(', ')})`,
    );
  }
  const e = result.data;
  if (e && e.RETENTION_MS < e.ANSWER_TIMEOUT_MS + RETENTION_MARGIN_MS) {
    problems.push(
      `RETENTION_MS: must be at least ANSWER_TIMEOUT_MS + ${RETENTION_MARGIN_MS} (${e.ANSWER_TIMEOUT_MS + RETENTION_MARGIN_MS}): a call is kept while its window is open and a minute more, or it could be decided twice (got ${shown('RETENTION_MS', present.RETENTION_MS)})`,
    );
  }
  if (e && e.PARTITION >= e.PARTITIONS) {
    problems.push(
      `PARTITION: must be below PARTITIONS (${e.PARTITIONS}): partitions are numbered from 0 (got ${shown('PARTITION', present.PARTITION)})`,
    );
  }
  let auth: Config['graph']['auth'] | undefined;
  if (e?.GRAPH_TOKEN) auth = { kind: 'token', token: e.GRAPH_TOKEN };
  else if (e?.GRAPH_TENANT_ID && e.GRAPH_CLIENT_ID && e.GRAPH_CLIENT_SECRET) {
    auth = {
      kind: 'clientCredentials',
      tenantId: e.GRAPH_TENANT_ID,
      clientId: e.GRAPH_CLIENT_ID,
      clientSecret: e.GRAPH_CLIENT_SECRET,
      authorityUrl: e.GRAPH_AUTHORITY_URL.replace(/\/+$/, ''),
      tokenEndpoint: e.GRAPH_TOKEN_ENDPOINT,
    };
  }
  if (problems.length > 0 || !e || !auth) throw new ConfigError(problems);
  const tls: NatsTls = {
    ...(e.NATS_TLS_CA && { caFile: e.NATS_TLS_CA }),
    ...(e.NATS_TLS_CERT && { certFile: e.NATS_TLS_CERT }),
    ...(e.NATS_TLS_KEY && { keyFile: e.NATS_TLS_KEY }),
  };
  return {
    natsServers: e.NATS_URL,
    nats: {
      servers: e.NATS_URL,
      auth: natsAuth(e),
      tls: Object.keys(tls).length > 0 ? tls : undefined,
    },
    subjectPrefix: e.SUBJECT_PREFIX,
    notificationsSubject: e.NOTIFICATIONS_SUBJECT,
    graph: { baseUrl: e.GRAPH_BASE_URL, apiVersion: e.GRAPH_API_VERSION, auth },
    answerTimeoutMs: e.ANSWER_TIMEOUT_MS,
    http: { port: e.HTTP_PORT, host: e.HTTP_HOST },
    webhook: {
      path: e.WEBHOOK_PATH,
      appId: e.WEBHOOK_APP_ID ?? e.GRAPH_CLIENT_ID,
      openIdUrl: e.WEBHOOK_OPENID_URL,
      issuers: e.WEBHOOK_ISSUERS,
      tenants: e.WEBHOOK_TENANTS,
      maxBytes: e.WEBHOOK_MAX_BYTES,
    },
    inspect: e.INSPECT,
    collectWhenQuiet: e.COLLECT_WHEN_QUIET,
    liveToken: e.LIVE_TOKEN,
    inspector: { port: e.INSPECT_PORT, host: e.INSPECT_HOST },
    logLevel: e.LOG_LEVEL,
    logPii: e.LOG_PII,
    retentionMs: e.RETENTION_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    partitions: { count: e.PARTITIONS, index: e.PARTITION },
    streamReplicas: e.STREAM_REPLICAS,
  };
}
