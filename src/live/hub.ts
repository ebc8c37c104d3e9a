import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isFinalState, STATE_NAMES } from '../../machines/states.js';
import type { LifecycleRecord, RecordFacts } from '../contract/records.js';
import type { Route } from '../http/server.js';
import { LIVE_PAGE_CSP, LIVE_PAGE_HTML } from './page.js';

type StateName = LifecycleRecord['state'];

/** One call that is not final yet, as the page shows it. */
export interface LiveCall {
  readonly callId: string;
  readonly state: StateName;
  /** When it entered its state (ISO-8601, the service's clock). */
  readonly since: string;
  /** The end of its answer window (epoch ms), when known. */
  readonly deadline: number | null;
  readonly reason?: string;
  readonly attempts?: number;
}

/** Reject latency (as the service measures it), in seconds, over the last {@link LATENCY_WINDOW} rejects. */
export interface LatencySummary {
  readonly count: number;
  readonly last: number | null;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly max: number | null;
}

/** The first event a client gets: everything the page shows. */
export interface LiveSnapshot {
  /** The server's clock (epoch ms), so the page counts down in the server's time. */
  readonly now: number;
  readonly calls: LiveCall[];
  readonly counts: Record<StateName, number>;
  readonly recent: LifecycleRecord[];
  readonly latency: LatencySummary;
  /** Which instance this is and what it owns (several instances share the calls). */
  readonly instance?: string;
}

/** One event per lifecycle record: the record and what it changed. */
export interface LiveUpdate {
  readonly now: number;
  readonly record: LifecycleRecord;
  /** The call after the record, or `null` once it is final (or unknown). */
  readonly call: LiveCall | null;
  readonly counts: Record<StateName, number>;
  readonly latency: LatencySummary;
}

export interface LiveHubOptions {
  /** Comment lines that keep proxies and the browser from timing out (default 15 s). */
  readonly heartbeatMs?: number;
  /** How many records the page keeps (default 50). */
  readonly recentLimit?: number;
  /**
   * How many live calls the table keeps, the most recently changed (default
   * 200); the counts cover every call. A service with 100,000 calls ringing
   * would otherwise keep a second copy of each and send them all to each page.
   */
  readonly callLimit?: number;
  /** `/events` clients at once, at most (default 32); more are answered 503. */
  readonly maxClients?: number;
  /**
   * When set, `GET /` and `GET /events` answer only requests that carry it:
   * `?token=…` (the page passes it on to its event stream) or
   * `Authorization: Bearer …`.
   */
  readonly token?: string | undefined;
  readonly now?: () => number;
}

export interface LiveHub {
  /** Feed one lifecycle record (a transition or a refusal) with its facts. */
  record(record: LifecycleRecord, facts?: RecordFacts): void;
  /** Which instance this is and what it owns now: sent to every page as an `instance` event. */
  instance(description: string): void;
  snapshot(): LiveSnapshot;
  /** `GET /` (the page) and `GET /events` (server-sent events). */
  readonly routes: Readonly<Record<string, Route>>;
  /** Connected `/events` clients. */
  readonly clientCount: number;
  /** End every event stream (before the HTTP server closes) and stop the heartbeat. */
  close(): void;
}

const LATENCY_WINDOW = 200;

function zeroCounts(): Record<StateName, number> {
  return Object.fromEntries(STATE_NAMES.map((s) => [s, 0])) as Record<StateName, number>;
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? null;
}

/**
 * What the page shows, kept from the records: the most recently changed live
 * calls, counts per state, the last records and the reject latency.
 *
 * Counts: live calls by their current state, final calls by the state they
 * ended in (since the process started). Calls restored after a restart
 * appear once their next record arrives.
 */
class LiveView {
  readonly #recentLimit: number;
  readonly #callLimit: number;
  /** The table: the most recently changed live calls, oldest first. */
  readonly #calls = new Map<string, LiveCall>();
  /** Every call, by state: finals counted, live ones moved from `previous` to `state`. */
  readonly #totals = zeroCounts();
  readonly #recent: LifecycleRecord[] = [];
  readonly #latencies: number[] = [];
  #rejects = 0;

  constructor(recentLimit: number, callLimit: number) {
    this.#recentLimit = recentLimit;
    this.#callLimit = callLimit;
  }

  /** Take in a record; returns the call as it is now (`null` once final or unknown). */
  apply(record: LifecycleRecord, facts: RecordFacts | undefined): LiveCall | null {
    this.#recent.push(record);
    if (this.#recent.length > this.#recentLimit) this.#recent.shift();
    const { callId, state } = record;
    if (record.refused) return this.#calls.get(callId) ?? null;
    // A call restored after a restart was never counted in: never below 0.
    if (record.previous !== null) {
      this.#totals[record.previous] = Math.max(0, this.#totals[record.previous] - 1);
    }
    this.#totals[state]++;
    if (facts?.rejectLatencyMs !== undefined) this.#latency(facts.rejectLatencyMs);
    if (isFinalState(state)) {
      this.#calls.delete(callId);
      return null;
    }
    return this.#remember(record, facts);
  }

  counts(): Record<StateName, number> {
    return { ...this.#totals };
  }

  latency(): LatencySummary {
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    return {
      count: this.#rejects,
      last: this.#latencies.at(-1) ?? null,
      p50: quantile(sorted, 0.5),
      p95: quantile(sorted, 0.95),
      max: sorted.at(-1) ?? null,
    };
  }

  snapshot(now: number): LiveSnapshot {
    return {
      now,
      calls: [...this.#calls.values()],
      counts: this.counts(),
      recent: [...this.#recent],
      latency: this.latency(),
    };
  }

  #latency(ms: number): void {
    this.#rejects++;
    this.#latencies.push(ms / 1000);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
  }

  #remember(record: LifecycleRecord, facts: RecordFacts | undefined): LiveCall {
    const { callId, state } = record;
    const known = this.#calls.get(callId);
    const call: LiveCall = {
      callId,
      state,
      since: known?.state === state ? known.since : record.at,
      deadline: known?.deadline ?? facts?.deadline ?? null,
      ...(record.reason !== undefined && { reason: record.reason }),
      ...(record.attempts !== undefined && { attempts: record.attempts }),
    };
    // Most recently changed last; the oldest leaves the table beyond its limit.
    this.#calls.delete(callId);
    this.#calls.set(callId, call);
    if (this.#calls.size > this.#callLimit) {
      for (const oldest of this.#calls.keys()) {
        this.#calls.delete(oldest);
        break;
      }
    }
    return call;
  }
}

/** A client further behind than this (bytes not yet taken by its socket) is let go. */
const MAX_BEHIND_BYTES = 256 * 1024;

/**
 * The connected `/events` clients: server-sent events, with a heartbeat that
 * keeps proxies from timing out. Bounded: at most `maxClients` at once, and a
 * client that does not keep up is dropped rather than buffered for.
 */
class EventStream {
  readonly #clients = new Set<ServerResponse>();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #maxClients: number;

  constructor(heartbeatMs: number, maxClients: number) {
    this.#maxClients = maxClients;
    this.#heartbeat = setInterval(() => this.#write(': heartbeat\n\n'), heartbeatMs);
    this.#heartbeat.unref();
  }

  get size(): number {
    return this.#clients.size;
  }

  /** Start the stream on `res` with a first event, then send it every later one. */
  open(req: IncomingMessage, res: ServerResponse, first: { event: string; data: unknown }): void {
    if (this.#clients.size >= this.#maxClients) {
      res.writeHead(503, { 'retry-after': '5', 'content-type': 'text/plain; charset=utf-8' });
      res.end('too many live page clients\n');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    req.socket.setNoDelay(true);
    res.write('retry: 2000\n\n');
    res.write(eventText(first.event, first.data));
    this.#clients.add(res);
    const drop = () => this.#clients.delete(res);
    req.once('close', drop);
    res.once('close', drop);
    res.once('error', drop);
  }

  send(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#write(eventText(event, data));
  }

  #write(text: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > MAX_BEHIND_BYTES) {
        this.#clients.delete(res);
        res.destroy();
      } else res.write(text);
    }
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }
}

function eventText(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy': LIVE_PAGE_CSP,
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

/**
 * What the live page shows, kept from the lifecycle records the service
 * publishes (no personal data: records carry none), and served as a page
 * plus a stream of server-sent events.
 */
export function createLiveHub(options: LiveHubOptions = {}): LiveHub {
  const now = options.now ?? Date.now;
  const view = new LiveView(options.recentLimit ?? 50, options.callLimit ?? 200);
  const stream = new EventStream(options.heartbeatMs ?? 15_000, options.maxClients ?? 32);
  let instance: string | undefined;
  const allowed = (req: IncomingMessage) =>
    options.token === undefined || carries(req, options.token);
  return {
    record(record, facts) {
      const call = view.apply(record, facts);
      if (stream.size === 0) return;
      const update: LiveUpdate = {
        now: now(),
        record,
        call,
        counts: view.counts(),
        latency: view.latency(),
      };
      stream.send('record', update);
    },
    instance(description) {
      instance = description;
      stream.send('instance', { instance: description });
    },
    snapshot: () => ({ ...view.snapshot(now()), ...(instance !== undefined && { instance }) }),
    routes: {
      'GET /': (req, res) => {
        if (!allowed(req)) return unauthorized(res);
        res.writeHead(200, PAGE_HEADERS);
        res.end(LIVE_PAGE_HTML);
      },
      'GET /events': (req, res) => {
        if (!allowed(req)) return unauthorized(res);
        const data = { ...view.snapshot(now()), ...(instance !== undefined && { instance }) };
        stream.open(req, res, { event: 'snapshot', data });
      },
    },
    get clientCount() {
      return stream.size;
    },
    close: () => stream.close(),
  };
}

/** Whether the request carries the token, as `?token=` or as a bearer token (compared in constant time). */
function carries(req: IncomingMessage, token: string): boolean {
  const query = new URL(req.url ?? '/', 'http://localhost').searchParams.get('token');
  const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
  const given = Buffer.from(query ?? bearer ?? '');
  const expected = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

function unauthorized(res: ServerResponse): void {
  res.writeHead(401, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain; charset=utf-8' });
  res.end('a token is required (LIVE_TOKEN)\n');
}
