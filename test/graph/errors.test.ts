import { describe, expect, it } from 'vitest';
import { GraphRequestError, parseGraphErrorBody, parseRetryAfter } from '../../src/graph/errors.js';
import { outcomeOf } from '../../src/graph/outcome.js';

const CLIENT_REQUEST_ID = '0f6a4c5e-1111-4222-8333-944455556666';
const NOW = Date.parse('2026-11-27T09:00:00.000Z');

describe("Graph's error body", () => {
  it('gives the code, the message and the inner correlation ids', () => {
    const body = JSON.stringify({
      error: {
        code: '8522',
        message: 'Call not found.',
        innerError: {
          'request-id': 'r-1',
          'client-request-id': CLIENT_REQUEST_ID,
          date: '2026-11-27T09:00:00',
        },
      },
    });

    expect(parseGraphErrorBody(body)).toEqual({
      code: '8522',
      message: 'Call not found.',
      requestId: 'r-1',
      clientRequestId: CLIENT_REQUEST_ID,
      date: '2026-11-27T09:00:00',
    });
  });

  it('reads the lower-case innererror spelling and a numeric code', () => {
    const parsed = parseGraphErrorBody('{"error":{"code":7504,"innererror":{"request-id":"r-2"}}}');

    expect(parsed).toMatchObject({ code: '7504', message: null, requestId: 'r-2' });
  });

  it('keeps the start of a body that is not JSON as the message', () => {
    const parsed = parseGraphErrorBody(
      `<html><body>502 Bad Gateway</body></html>${'x'.repeat(500)}`,
    );

    expect(parsed.code).toBeNull();
    expect(parsed.message).toMatch(/^<html><body>502 Bad Gateway/);
    expect(parsed.message).toHaveLength(200);
  });

  it('gives nothing for an empty body or JSON of another shape', () => {
    expect(parseGraphErrorBody('')).toMatchObject({ code: null, message: null });
    expect(parseGraphErrorBody('[1,2]')).toMatchObject({ code: null, message: null });
    expect(parseGraphErrorBody('{"error":"nope"}')).toMatchObject({ code: null, message: null });
  });
});

describe('Retry-After', () => {
  it('reads delay-seconds as milliseconds', () => {
    expect(parseRetryAfter('3', NOW)).toBe(3000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
    expect(parseRetryAfter(['2', '9'], NOW)).toBe(2000);
  });

  it('reads an HTTP date as the time left until it, never below zero', () => {
    expect(parseRetryAfter('Fri, 27 Nov 2026 09:00:05 GMT', NOW)).toBe(5000);
    expect(parseRetryAfter('Fri, 27 Nov 2026 08:59:00 GMT', NOW)).toBe(0);
  });

  it('ignores an absent or unreadable value', () => {
    expect(parseRetryAfter(undefined, NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-1', NOW)).toBeUndefined();
  });
});

describe('GraphRequestError', () => {
  it('carries the status, Graph code and message, Retry-After and request id of a response', () => {
    const error = GraphRequestError.fromResponse({
      status: 429,
      headers: { 'retry-after': '2', 'request-id': 'r-9' },
      body: '{"error":{"code":"TooManyRequests","message":"Slow down"}}',
      clientRequestId: CLIENT_REQUEST_ID,
      now: NOW,
    });

    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'GraphRequestError',
      code: 'GRAPH_HTTP',
      status: 429,
      graphCode: 'TooManyRequests',
      graphMessage: 'Slow down',
      retryAfterMs: 2000,
      retryable: true,
      requestId: 'r-9',
      clientRequestId: CLIENT_REQUEST_ID,
      message: 'Graph answered 429 TooManyRequests Slow down',
    });
  });

  it('marks 4xx other than 429 as not retryable, and 5xx as retryable', () => {
    const response = (status: number) =>
      GraphRequestError.fromResponse({ status, headers: {}, body: '', clientRequestId: 'c' });

    expect(response(403).retryable).toBe(false);
    expect(response(404).retryable).toBe(false);
    expect(response(503).retryable).toBe(true);
  });

  it('keeps the cause of a network failure and counts it retryable', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const error = new GraphRequestError('ECONNREFUSED: connect ECONNREFUSED', {
      code: 'GRAPH_NETWORK',
      status: null,
      clientRequestId: 'c',
      cause,
    });

    expect(error.cause).toBe(cause);
    expect(error).toMatchObject({ retryable: true, maybeDelivered: false, graphCode: null });
  });

  it('becomes the facts the call machine reads', () => {
    const refused = GraphRequestError.fromResponse({
      status: 403,
      headers: {},
      body: '{"error":{"code":"7504","message":"Insufficient enterprise tenant permissions"}}',
      clientRequestId: 'c',
    });
    const timedOut = new GraphRequestError('timeout', {
      code: 'GRAPH_TIMEOUT',
      status: null,
      clientRequestId: 'c',
      maybeDelivered: true,
    });

    expect(outcomeOf(refused)).toEqual({
      status: 403,
      maybeDelivered: false,
      code: '7504',
      message: 'Insufficient enterprise tenant permissions',
    });
    expect(outcomeOf(timedOut)).toEqual({ status: null, maybeDelivered: true, message: 'timeout' });
  });
});
