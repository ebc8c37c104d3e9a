import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { describeIssues } from '../../contract/errors.js';
import type { Fault } from './faults.js';
import {
  type Correlation,
  correlationHeaders,
  firstHeader,
  graphErrorBody,
  readBody,
  send,
} from './http.js';
import { acceptReject, type EmulatorState, hold, type ReceivedReject } from './state.js';

/** The reject body as Graph documents it (learn.microsoft.com/graph/api/call-reject). */
const RejectBody = z.object({
  reason: z.enum(['none', 'busy', 'forbidden'], { error: 'must be none, busy or forbidden' }),
  callbackUri: z
    .url({ protocol: /^https$/, error: 'must be an https URL' })
    .nullable()
    .optional(),
});

const STATUS_ERRORS: Record<number, readonly [code: string, message: string]> = {
  404: ['8522', 'Call not found.'],
  403: ['7504', 'Insufficient enterprise tenant permissions'],
  429: ['TooManyRequests', 'Too many requests. Retry after the interval in Retry-After.'],
  500: ['InternalServerError', 'An internal server error occurred.'],
  502: ['BadGateway', 'Bad gateway.'],
  503: ['ServiceUnavailable', 'The service is temporarily unavailable.'],
  504: ['GatewayTimeout', 'The gateway timed out.'],
};

export interface RejectRouteOptions {
  /** Added before every answer. */
  readonly latencyMs: number;
}

/**
 * `POST /{v1.0|beta}/communications/calls/{id}/reject`: authenticate,
 * validate, apply the next fault, and answer as Graph would. Every request
 * is recorded, whatever its answer.
 */
export async function handleReject(
  req: IncomingMessage,
  res: ServerResponse,
  route: { apiVersion: 'v1.0' | 'beta'; callId: string },
  state: EmulatorState,
  options: RejectRouteOptions,
): Promise<void> {
  const receivedAt = Date.now();
  const receivedPerf = performance.now();
  const ids: Correlation = {
    requestId: randomUUID(),
    clientRequestId: firstHeader(req.headers['client-request-id']),
  };
  const headers = correlationHeaders(ids, firstHeader(req.headers['scenario-id']) ?? randomUUID());
  const text = await readBody(req);
  const token = bearer(firstHeader(req.headers.authorization));
  const parsed = token === null ? null : parseRejectBody(text);
  const fault = parsed?.ok ? state.faults.take(route.callId) : null;
  const record: ReceivedReject = {
    seq: state.records.length + 1,
    apiVersion: route.apiVersion,
    callId: route.callId,
    reason: parsed?.ok ? parsed.reason : null,
    callbackUri: parsed?.ok ? parsed.callbackUri : null,
    clientRequestId: ids.clientRequestId,
    token,
    contentType: firstHeader(req.headers['content-type']),
    body: text,
    requestId: ids.requestId,
    receivedAt,
    receivedPerf,
    fault: fault?.kind ?? null,
    status: null,
    dropped: false,
    answeredAt: null,
    answeredPerf: null,
  };
  state.records.push(record);

  const answer = async (
    status: number,
    extra: Record<string, string> = {},
    unauthorized = 'Access token is empty.',
  ) => {
    if (options.latencyMs > 0) await sleep(options.latencyMs);
    const error = STATUS_ERRORS[status];
    const body =
      status === 400 && parsed && !parsed.ok
        ? graphErrorBody('BadRequest', parsed.error, ids)
        : status === 401
          ? graphErrorBody('InvalidAuthenticationToken', unauthorized, ids)
          : error && graphErrorBody(error[0], error[1], ids);
    send(res, status, body ?? undefined, { ...headers, ...extra });
    record.status = status;
    record.answeredAt = Date.now();
    record.answeredPerf = performance.now();
  };

  if (token === null) return answer(401);
  if (!parsed?.ok) return answer(400);
  return applyFault(fault, { answer, req, record, state, callId: route.callId });
}

interface FaultContext {
  answer(status: number, extra?: Record<string, string>, unauthorized?: string): Promise<void>;
  readonly req: IncomingMessage;
  readonly record: ReceivedReject;
  readonly state: EmulatorState;
  readonly callId: string;
}

async function applyFault(fault: Fault | null, context: FaultContext): Promise<void> {
  const { answer, state, callId } = context;
  switch (fault?.kind) {
    case 'status': {
      const after = fault.retryAfterSeconds;
      return answer(fault.status, after === undefined ? {} : { 'retry-after': String(after) });
    }
    case 'notFound':
      return answer(404);
    case 'forbidden':
      return answer(403);
    case 'unauthorized':
      return answer(401, {}, 'Access token has expired or is not yet valid.');
    case 'drop':
      // Graph may have processed it before the connection broke (the interesting case).
      if (fault.accept !== false) acceptReject(state, callId);
      context.record.dropped = true;
      context.req.socket.destroy();
      return;
    case 'slow': {
      // Graph decided on arrival; only the answer is late.
      const status = acceptReject(state, callId);
      await (fault.hold ? hold(state, callId) : sleep(fault.ms ?? 0));
      return answer(status);
    }
    default:
      return answer(acceptReject(state, callId));
  }
}

function bearer(authorization: string | null): string | null {
  const match = authorization?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1] ?? null;
}

type ParsedReject =
  | { ok: true; reason: string; callbackUri: string | null }
  | { ok: false; error: string };

function parseRejectBody(text: string): ParsedReject {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'the body must be a JSON object' };
  }
  const result = RejectBody.safeParse(value);
  if (!result.success) return { ok: false, error: describeIssues(result.error) };
  return { ok: true, reason: result.data.reason, callbackUri: result.data.callbackUri ?? null };
}
