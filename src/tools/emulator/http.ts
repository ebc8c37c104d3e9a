import type { IncomingMessage, ServerResponse } from 'node:http';

/** Bodies larger than this are refused: nothing the emulator accepts comes close. */
const MAX_BODY_BYTES = 1024 * 1024;

export class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/** The whole request body as text. */
export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new BodyTooLargeError(`body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Answer with a JSON body, or none when `body` is undefined. */
export function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.destroyed || res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, { ...headers, 'content-length': '0' });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
  });
  res.end(text);
}

/** Graph's correlation ids for one request. */
export interface Correlation {
  readonly requestId: string;
  readonly clientRequestId: string | null;
}

/** Graph's error shape (learn.microsoft.com/graph/errors). */
export function graphErrorBody(code: string, message: string, ids: Correlation) {
  return {
    error: {
      code,
      message,
      innerError: {
        date: new Date().toISOString().replace(/\.\d{3}Z$/, ''),
        'request-id': ids.requestId,
        'client-request-id': ids.clientRequestId ?? ids.requestId,
      },
    },
  };
}

/** The headers Graph answers every request with. */
export function correlationHeaders(ids: Correlation, scenarioId: string): Record<string, string> {
  return {
    'request-id': ids.requestId,
    'client-request-id': ids.clientRequestId ?? ids.requestId,
    'scenario-id': scenarioId,
  };
}

export function sendGraphError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  ids: Correlation,
  headers: Record<string, string> = {},
): void {
  send(res, status, graphErrorBody(code, message, ids), headers);
}

export function firstHeader(value: string | string[] | undefined): string | null {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? null : first;
}
