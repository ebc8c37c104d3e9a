import { randomUUID } from 'node:crypto';
import { type CryptoKey, decodeJwt, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { Agent, request } from 'undici';
import { z } from 'zod';
import { describeIssues } from '../../contract/errors.js';
import { callKey } from './faults.js';

/**
 * Graph's side of the webhook: the emulator signs notifications with a key
 * of its own (published through its OpenID configuration and JWKS), POSTs
 * the incoming-call batch to the bot's callback URL, and follows up as a
 * real call would: `deleted` after an accepted reject, `updated`/established
 * after an answer, `deleted`/terminated after a hang-up.
 */

/** The issuer of Graph's notification tokens. */
export const NOTIFICATION_ISSUER = 'https://api.botframework.com';
/** The tenant placed calls belong to when none is given. */
export const DEFAULT_TENANT_ID = '72f988bf-86f1-41af-91ab-2d7cd011db47';
/** resultInfo of a call that rang out: the emulator's choice, Graph documents no fixed code. */
export const TIMED_OUT = { code: 408, subcode: 0, message: 'The call was not answered in time.' };
/** A notification token is signed again once less than this is left of its lifetime. */
const RENEW_BEFORE_EXPIRY_S = 60;
/** `resultInfo` of a hang-up when none is given. */
const NORMAL_HANGUP = { code: 0, subcode: 540000, message: 'Call ended by the caller.' };

const Participant = z.record(z.string(), z.unknown(), { error: 'must be an object' });

/** The body of `POST /_emulator/calls`, and the options of `placeCall`. */
export const PlaceCallOptions = z.object({
  callbackUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
  /** The bot's app id: the token's `aud`. */
  appId: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }),
  /** Default: a fresh UUID. */
  callId: z
    .string({ error: 'must be a string' })
    .regex(/^[\w-]{1,128}$/, { error: 'must be 1-128 letters, digits, _ or -' })
    .optional(),
  /** The token's `tid` and `resourceData.tenantId`. Default {@link DEFAULT_TENANT_ID}. */
  tenantId: z
    .string({ error: 'must be a string' })
    .min(1, { error: 'must not be empty' })
    .optional(),
  /** Graph's `participantInfo` of the caller. Default: a Teams user. */
  source: Participant.optional(),
  /** Default: the bot (`identity.application.id` = appId). */
  targets: z.array(Participant, { error: 'must be an array of objects' }).optional(),
  direction: z.enum(['incoming', 'outgoing'], { error: 'must be incoming or outgoing' }).optional(),
  /** Default `['audio']`. */
  requestedModalities: z.array(z.string(), { error: 'must be an array of strings' }).optional(),
  /** `Scenario-Id` of every notification of the call. Default: a fresh UUID. */
  scenarioId: z.string({ error: 'must be a string' }).min(1).optional(),
  /** `X-Microsoft-Skype-Chain-ID` and `callChainId`. Default: a fresh UUID. */
  chainId: z.string({ error: 'must be a string' }).min(1).optional(),
});
export type PlaceCallOptions = z.input<typeof PlaceCallOptions>;

/** The body of `POST /_emulator/calls/{id}/hangup` (all optional). */
export const HangUpOptions = z.object({
  code: z.union([z.number(), z.string()], { error: 'must be a number or a string' }).optional(),
  subcode: z.union([z.number(), z.string()], { error: 'must be a number or a string' }).optional(),
  message: z.string({ error: 'must be a string' }).optional(),
});
export type HangUpOptions = z.input<typeof HangUpOptions>;

/** A call the emulator announced, as Graph sees it. */
export type EmulatedCallState = 'incoming' | 'established' | 'terminated' | 'deleted';

export interface EmulatedCall {
  readonly callId: string;
  readonly callbackUrl: string;
  readonly appId: string;
  readonly tenantId: string;
  readonly scenarioId: string;
  readonly chainId: string;
  state: EmulatedCallState;
}

/** One notification POSTed to a callback, with the webhook's answer. */
export interface SentNotification {
  /** 1, 2, … in sending order. */
  readonly seq: number;
  readonly callId: string;
  readonly changeType: 'created' | 'updated' | 'deleted';
  /** `resourceData.state`, `null` for a bare `deleted`. */
  readonly state: string | null;
  readonly callbackUrl: string;
  /** `X-Microsoft-Skype-Message-ID`. */
  readonly messageId: string;
  /** `Date.now()` when sent. */
  readonly sentAt: number;
  /** The webhook's status; `null` while waiting or when it did not answer. */
  status: number | null;
  /** Why there is no status (connection refused, time-out). */
  error: string | null;
  /** Request sent → answer received, ms. */
  ms: number | null;
}

export interface PlacedCall {
  readonly callId: string;
  /** The webhook's answer to the incoming-call batch (`null`: no answer, see `notification.error`). */
  readonly status: number | null;
  readonly notification: SentNotification;
}

/** Thrown by `answer`/`hangUp` for a call the emulator never announced, or one in the wrong state. */
export class CallStateError extends Error {
  override readonly name = 'CallStateError';
  constructor(
    message: string,
    readonly status: 404 | 409,
  ) {
    super(message);
  }
}

/** The public half of the signing key, as a JWKS serves it. */
export interface NotificationKeys {
  readonly kid: string;
  readonly jwk: JWK;
  readonly privateKey: CryptoKey;
}

export async function createNotificationKeys(kid = `emulator-${randomUUID()}`) {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid, use: 'sig', alg: 'RS256' };
  return { kid, jwk, privateKey } satisfies NotificationKeys;
}

/** A notification token as Graph signs it: RS256 with `kid`, `aud` = appId, `tid`, short-lived. */
export function signNotificationToken(
  keys: NotificationKeys,
  claims: { appId: string; tenantId?: string; issuer?: string; ttlSeconds?: number },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tid: claims.tenantId ?? DEFAULT_TENANT_ID })
    .setProtectedHeader({ alg: 'RS256', kid: keys.kid, typ: 'JWT' })
    .setIssuer(claims.issuer ?? NOTIFICATION_ISSUER)
    .setAudience(claims.appId)
    .setIssuedAt(now)
    .setNotBefore(now - 5)
    .setExpirationTime(now + (claims.ttlSeconds ?? 300))
    .sign(keys.privateKey);
}

const resourceOf = (callId: string) => ({
  resource: `/app/calls/${callId}`,
  resourceUrl: `/communications/calls/${callId}`,
});

const batch = (item: Record<string, unknown>) => ({
  '@odata.type': '#microsoft.graph.commsNotifications',
  value: [{ '@odata.type': '#microsoft.graph.commsNotification', ...item }],
});

/** Graph's incoming-call batch (`created`, state `incoming`). */
export function incomingCallBatch(call: {
  callId: string;
  appId: string;
  callbackUrl: string;
  tenantId?: string;
  chainId?: string;
  source?: Record<string, unknown>;
  targets?: Record<string, unknown>[];
  direction?: 'incoming' | 'outgoing';
  requestedModalities?: string[];
}) {
  const tenantId = call.tenantId ?? DEFAULT_TENANT_ID;
  return batch({
    changeType: 'created',
    ...resourceOf(call.callId),
    resourceData: {
      '@odata.type': '#microsoft.graph.call',
      state: 'incoming',
      direction: call.direction ?? 'incoming',
      callbackUri: call.callbackUrl,
      source: call.source ?? {
        '@odata.type': '#microsoft.graph.participantInfo',
        identity: {
          '@odata.type': '#microsoft.graph.identitySet',
          user: { displayName: 'Emulated Caller', id: randomUUID(), tenantId },
        },
        endpointType: 'default',
      },
      targets: call.targets ?? [
        {
          '@odata.type': '#microsoft.graph.invitationParticipantInfo',
          identity: {
            '@odata.type': '#microsoft.graph.identitySet',
            application: { displayName: 'Calling bot', id: call.appId },
          },
        },
      ],
      requestedModalities: call.requestedModalities ?? ['audio'],
      tenantId,
      callChainId: call.chainId ?? randomUUID(),
      myParticipantId: randomUUID(),
    },
  });
}

export interface NotifierOptions {
  /** The signing key, or how to get it (made on first use). */
  readonly keys: () => Promise<NotificationKeys>;
  readonly issuer: string;
  /** Lifetime of each token. Default 300 s. */
  readonly tokenTtlSeconds?: number;
  /** How long to wait for the webhook's answer. Default 5000 ms (Graph's budget). */
  readonly timeoutMs?: number;
  /**
   * How long a placed call rings before Graph gives up on it and sends
   * `deleted` with state `terminated` (default 15000 ms, Graph's window).
   */
  readonly answerTimeoutMs?: number;
  readonly log?: { debug(fields: object, message: string): void };
}

export interface Notifier {
  placeCall(options: PlaceCallOptions): Promise<PlacedCall>;
  answer(callId: string): Promise<SentNotification>;
  hangUp(callId: string, resultInfo?: HangUpOptions): Promise<SentNotification>;
  /** After the emulator accepted a reject: a bare `deleted` for a ringing call it announced. */
  rejectAccepted(callId: string): void;
  calls(): EmulatedCall[];
  notifications(): SentNotification[];
  /** Wait until every notification sent so far has its answer (or failed). */
  settled(): Promise<void>;
  reset(): void;
  close(): Promise<void>;
}

/** Validate `PlaceCallOptions`; a `TypeError` names each bad field. */
export function parsePlaceCall(value: unknown): z.output<typeof PlaceCallOptions> {
  const result = PlaceCallOptions.safeParse(value);
  if (!result.success) throw new TypeError(describeIssues(result.error));
  return result.data;
}

export function createNotifier(options: NotifierOptions): Notifier {
  const sender = new NotificationSender(options);
  const book = new CallBook(sender, options.answerTimeoutMs ?? 15_000);
  return {
    placeCall: (input) => book.place(input),
    answer: (callId) => book.answer(callId),
    hangUp: (callId, resultInfo) => book.hangUp(callId, resultInfo),
    rejectAccepted: (callId) => book.rejectAccepted(callId),
    calls: () => book.list(),
    notifications: () => sender.records(),
    settled: () => sender.settled(),
    reset() {
      book.reset();
      sender.forget();
    },
    close: () => {
      book.close();
      return sender.close();
    },
  };
}

/**
 * The calls the emulator announced, each with its state as Graph sees it.
 * Every change of state goes out as Graph's notification through the sender;
 * a call nobody answers or rejects in time is ended as Graph would end it.
 */
class CallBook {
  readonly #calls = new Map<string, EmulatedCall>();
  readonly #sender: NotificationSender;
  readonly #timers = new RingTimers();
  readonly #answerTimeoutMs: number;

  constructor(sender: NotificationSender, answerTimeoutMs: number) {
    this.#sender = sender;
    this.#answerTimeoutMs = answerTimeoutMs;
  }

  async place(input: PlaceCallOptions): Promise<PlacedCall> {
    const o = parsePlaceCall(input);
    const callId = o.callId ?? randomUUID();
    if (this.#calls.has(callKey(callId))) {
      throw new CallStateError(`call ${callId} was placed already`, 409);
    }
    const call = newCall(callId, o);
    this.#calls.set(callKey(callId), call);
    const body = announcement(call, o);
    const notification = await this.#sender.post(call, 'created', 'incoming', body);
    this.#timeOutLater(call);
    return { callId, status: notification.status, notification };
  }

  answer(callId: string): Promise<SentNotification> {
    const call = this.#known(callId);
    if (call.state !== 'incoming') {
      throw new CallStateError(`call ${callId} is ${call.state}, not incoming`, 409);
    }
    call.state = 'established';
    return this.#sender.post(call, 'updated', 'established', establishedBatch(call));
  }

  hangUp(callId: string, input: HangUpOptions = {}): Promise<SentNotification> {
    const call = this.#known(callId);
    if (call.state === 'terminated' || call.state === 'deleted') {
      throw new CallStateError(`call ${callId} is ${call.state} already`, 409);
    }
    const parsed = HangUpOptions.safeParse(input);
    if (!parsed.success) throw new TypeError(describeIssues(parsed.error));
    return this.#terminate(call, { ...NORMAL_HANGUP, ...parsed.data });
  }

  rejectAccepted(callId: string): void {
    const call = this.#calls.get(callKey(callId));
    if (call?.state !== 'incoming') return;
    call.state = 'deleted';
    void this.#sender.post(call, 'deleted', null, deletedBatch(call));
  }

  /** Copies, in placing order. */
  list(): EmulatedCall[] {
    return [...this.#calls.values()].map((call) => ({ ...call }));
  }

  reset(): void {
    this.#timers.clear();
    this.#calls.clear();
  }

  close(): void {
    this.#timers.clear();
  }

  /** `deleted` with state `terminated` and Graph's resultInfo: a hang-up or a time-out. */
  #terminate(call: EmulatedCall, resultInfo: object): Promise<SentNotification> {
    call.state = 'terminated';
    return this.#sender.post(call, 'deleted', 'terminated', terminatedBatch(call, resultInfo));
  }

  /** Graph's follow-up when nobody answered or rejected in time. */
  #timeOutLater(call: EmulatedCall): void {
    this.#timers.after(this.#answerTimeoutMs, () => {
      if (call.state !== 'incoming' || this.#calls.get(callKey(call.callId)) !== call) return;
      void this.#terminate(call, TIMED_OUT);
    });
  }

  #known(callId: string): EmulatedCall {
    const call = this.#calls.get(callKey(callId));
    if (!call) throw new CallStateError(`no call ${callId} was placed`, 404);
    return call;
  }
}

/** Timers of ringing calls; unref'd, so a ringing call never keeps the process alive. */
class RingTimers {
  readonly #timers = new Set<NodeJS.Timeout>();

  after(ms: number, then: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      then();
    }, ms);
    timer.unref();
    this.#timers.add(timer);
  }

  clear(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }
}

/** A call as Graph tracks it from the moment it is placed. */
function newCall(callId: string, o: z.output<typeof PlaceCallOptions>): EmulatedCall {
  return {
    callId,
    callbackUrl: o.callbackUrl,
    appId: o.appId,
    tenantId: o.tenantId ?? DEFAULT_TENANT_ID,
    scenarioId: o.scenarioId ?? randomUUID(),
    chainId: o.chainId ?? randomUUID(),
    state: 'incoming',
  };
}

/** The incoming-call batch of a placed call, with the caller's choices from the options. */
function announcement(call: EmulatedCall, o: z.output<typeof PlaceCallOptions>) {
  return incomingCallBatch({
    ...call,
    ...(o.source && { source: o.source }),
    ...(o.targets && { targets: o.targets }),
    ...(o.direction && { direction: o.direction }),
    ...(o.requestedModalities && { requestedModalities: o.requestedModalities }),
  });
}

/** `updated`, state `established`: the call was answered. */
function establishedBatch(call: EmulatedCall) {
  return batch({
    changeType: 'updated',
    ...resourceOf(call.callId),
    resourceData: {
      '@odata.type': '#microsoft.graph.call',
      state: 'established',
      callChainId: call.chainId,
      tenantId: call.tenantId,
    },
  });
}

/** `deleted`, state `terminated`, with why the call ended. */
function terminatedBatch(call: EmulatedCall, resultInfo: object) {
  return batch({
    changeType: 'deleted',
    ...resourceOf(call.callId),
    resourceData: {
      '@odata.type': '#microsoft.graph.call',
      state: 'terminated',
      callChainId: call.chainId,
      tenantId: call.tenantId,
      resultInfo,
    },
  });
}

/** A bare `deleted`: what Graph sends after an accepted reject. */
function deletedBatch(call: EmulatedCall) {
  return batch({ changeType: 'deleted', ...resourceOf(call.callId) });
}

/**
 * Signs and POSTs notifications to the callbacks, and keeps every one sent
 * with the webhook's answer, in sending order.
 */
class NotificationSender {
  readonly #options: NotifierOptions;
  readonly #timeoutMs: number;
  readonly #agent = new Agent({ keepAliveTimeout: 10_000, connections: 16 });
  readonly #sent: SentNotification[] = [];
  readonly #inFlight = new Set<Promise<unknown>>();
  /** The token in use per app id and tenant, the key that signed it, and when to sign the next (epoch ms). */
  readonly #tokens = new Map<string, { token: string; keys: NotificationKeys; renewAt: number }>();

  constructor(options: NotifierOptions) {
    this.#options = options;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** Record the notification as sent now, then POST it; resolves once the webhook answered. */
  async post(
    call: EmulatedCall,
    changeType: SentNotification['changeType'],
    state: string | null,
    body: unknown,
  ): Promise<SentNotification> {
    const record = sentRecord(this.#sent.length + 1, call, changeType, state);
    this.#sent.push(record);
    const work = this.#deliver(call, record, body);
    this.#inFlight.add(work);
    void work.finally(() => this.#inFlight.delete(work));
    return work;
  }

  /** Copies, oldest first. */
  records(): SentNotification[] {
    return this.#sent.map((record) => ({ ...record }));
  }

  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.allSettled([...this.#inFlight]);
  }

  forget(): void {
    this.#sent.length = 0;
  }

  close(): Promise<void> {
    return this.#agent.destroy();
  }

  /** POST the body and fill in the record with the webhook's answer (or why there is none). */
  async #deliver(call: EmulatedCall, record: SentNotification, body: unknown) {
    const token = await this.#sign(call);
    const started = performance.now();
    try {
      record.status = await this.#send(call, record.messageId, token, body);
    } catch (error) {
      record.error = error instanceof Error ? error.message : String(error);
    }
    record.ms = Math.round((performance.now() - started) * 100) / 100;
    const { changeType, state, status, error } = record;
    this.#options.log?.debug(
      { callId: call.callId, changeType, state, status, error },
      'graph emulator notified',
    );
    return record;
  }

  /**
   * Graph's token for the call's app and tenant: signed once and put on every
   * notification until less than a minute (or half its lifetime, when
   * shorter) is left, or until the signing key changes.
   */
  async #sign(call: EmulatedCall): Promise<string> {
    const keys = await this.#options.keys();
    const audience = `${call.appId}\n${call.tenantId}`;
    const held = this.#tokens.get(audience);
    const sameKey = held?.keys.kid === keys.kid && held.keys.privateKey === keys.privateKey;
    if (held && sameKey && Date.now() < held.renewAt) return held.token;
    const token = await signNotificationToken(keys, {
      appId: call.appId,
      tenantId: call.tenantId,
      issuer: this.#options.issuer,
      ...(this.#options.tokenTtlSeconds !== undefined && {
        ttlSeconds: this.#options.tokenTtlSeconds,
      }),
    });
    const { iat = 0, exp = 0 } = decodeJwt(token);
    const renewAt = (exp - Math.min(RENEW_BEFORE_EXPIRY_S, (exp - iat) / 2)) * 1000;
    this.#tokens.set(audience, { token, keys, renewAt });
    return token;
  }

  /** The webhook's status, once its answer's body has been read to the end. */
  async #send(call: EmulatedCall, messageId: string, token: string, body: unknown) {
    const response = await request(call.callbackUrl, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json; charset=utf-8',
        'scenario-id': call.scenarioId,
        'x-microsoft-skype-chain-id': call.chainId,
        'x-microsoft-skype-message-id': messageId,
        'client-request-id': randomUUID(),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.#timeoutMs),
    });
    await response.body.dump();
    return response.statusCode;
  }
}

/** A notification as sent now, waiting for the webhook's answer. */
function sentRecord(
  seq: number,
  call: EmulatedCall,
  changeType: SentNotification['changeType'],
  state: string | null,
): SentNotification {
  return {
    seq,
    callId: call.callId,
    changeType,
    state,
    callbackUrl: call.callbackUrl,
    messageId: randomUUID(),
    sentAt: Date.now(),
    status: null,
    error: null,
    ms: null,
  };
}
