import { randomUUID } from 'node:crypto';
import { request } from 'undici';

export interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  /** The body parsed as JSON, or `undefined` when empty. */
  readonly json: unknown;
}

/** One HTTP request to the emulator, body read to the end. */
export async function call(
  url: string,
  options: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const body =
    options.body === undefined || typeof options.body === 'string'
      ? options.body
      : JSON.stringify(options.body);
  const response = await request(url, {
    method: (options.method ?? (body === undefined ? 'GET' : 'POST')) as 'GET',
    headers: options.headers ?? {},
    ...(body !== undefined && { body }),
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    text,
    json: text === '' ? undefined : JSON.parse(text),
  };
}

/** POST a reject for `callId` the way Graph expects it. */
export function postReject(
  baseUrl: string,
  callId: string,
  body: unknown = { reason: 'busy' },
  headers: Record<string, string> = {},
): Promise<Answer> {
  return call(`${baseUrl}/v1.0/communications/calls/${callId}/reject`, {
    method: 'POST',
    body,
    headers: {
      authorization: 'Bearer test-token',
      'content-type': 'application/json',
      'client-request-id': randomUUID(),
      ...headers,
    },
  });
}

/** The `error` object of a Graph (or control API) error body. */
export function graphError(answer: Answer): { code?: string; message?: string } {
  return (answer.json as { error?: { code?: string; message?: string } } | undefined)?.error ?? {};
}
