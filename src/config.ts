import { z } from 'zod';

/**
 * The service's configuration, parsed once from the environment. Every bad
 * variable is reported in one message; the entry point exits 2 on it.
 */

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const TOKEN = /^[^.*>\s]+$/;
/** Variables whose values never appear in an error. */
const SECRETS = new Set(['GRAPH_CLIENT_SECRET', 'GRAPH_TOKEN']);

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

const natsUrl = z
  .string()
  .regex(/^(nats|tls|ws|wss):\/\/[^\s]+$|^[^\s:/]+(:\d+)?$/, 'must be nats://host:port URLs');

const Env = z.object({
  NATS_URL: list(natsUrl, 'must be one or more nats://host:port URLs, comma-separated').default([
    'nats://127.0.0.1:4222',
  ]),
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
  LOG_LEVEL: z
    .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` })
    .default('info'),
  RETENTION_MS: wholeNumber('must be a whole number of milliseconds ≥ 1000', 1_000).default(
    3_600_000,
  ),
  SHUTDOWN_TIMEOUT_MS: wholeNumber('must be a whole number of milliseconds ≥ 100', 100).default(
    8_000,
  ),
});

export interface Config {
  readonly natsServers: string[];
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
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly retentionMs: number;
  readonly shutdownTimeoutMs: number;
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
        const shown = SECRETS.has(name) ? 'a value' : JSON.stringify(present[name] ?? null);
        return `${name}: ${issue.message} (got ${shown})`;
      });
  const credentials = ['GRAPH_TENANT_ID', 'GRAPH_CLIENT_ID', 'GRAPH_CLIENT_SECRET'];
  const missing = credentials.filter((name) => !present[name]);
  if (!present.GRAPH_TOKEN && missing.length > 0) {
    problems.push(
      `GRAPH_TOKEN: is required unless ${credentials.join(', ')} are all set (missing ${missing.join(', ')})`,
    );
  }
  const e = result.data;
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
  return {
    natsServers: e.NATS_URL,
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
    logLevel: e.LOG_LEVEL,
    retentionMs: e.RETENTION_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
  };
}
