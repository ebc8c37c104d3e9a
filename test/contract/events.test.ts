import { describe, expect, it } from 'vitest';
import { parseEnvelope, parseEnvelopeText } from '../../src/contract/events.js';

const AT = '2026-11-27T09:00:00Z';
const AT_MS = Date.parse(AT);
const CALL_ID = '57dab8b1-894c-409a-b240-bd8beae78896';
const CALL_ID_UPPER = '57DAB8B1894C409AB240BD8BEAE78896';
const TYPE_RULE = 'must be one of call.incoming, call.reject, call.answered, call.terminated';

/** Parse and fail the test when the envelope is refused. */
function parsed(value: unknown) {
  const result = parseEnvelope(value);
  if (!result.ok) throw new Error(`unexpected refusal: ${result.error}`);
  return result.value;
}

/** Parse and fail the test when the envelope is accepted. */
function refusal(value: unknown): string {
  const result = parseEnvelope(value);
  if (result.ok) throw new Error(`unexpected acceptance: ${JSON.stringify(result.value)}`);
  return result.error;
}

describe('every envelope type', () => {
  it('accepts call.incoming and keeps the Graph call resource fields', () => {
    const source = { identity: { user: { id: 'u1', displayName: 'Adele Vance' } } };

    expect(
      parsed({
        type: 'call.incoming',
        callId: CALL_ID,
        at: AT,
        tenantId: 't1',
        source,
        targets: [{ identity: { application: { id: 'bot' } } }],
        direction: 'incoming',
        chatInfo: { threadId: '19:meeting' },
        meetingInfo: { allowConversationWithoutHost: true },
      }),
    ).toEqual({
      type: 'call.incoming',
      callId: CALL_ID,
      at: AT_MS,
      tenantId: 't1',
      source,
      targets: [{ identity: { application: { id: 'bot' } } }],
      direction: 'incoming',
      chatInfo: { threadId: '19:meeting' },
      meetingInfo: { allowConversationWithoutHost: true },
    });
  });

  it('keeps extra Graph fields on call.incoming', () => {
    const value = parsed({
      type: 'call.incoming',
      callId: CALL_ID,
      at: AT,
      callChainId: 'b9c6d4e1-0f3a-4c2b-8e7d-6a5f4b3c2d1e',
      requestedModalities: ['audio', 'video'],
    });

    expect(value).toMatchObject({
      callChainId: 'b9c6d4e1-0f3a-4c2b-8e7d-6a5f4b3c2d1e',
      requestedModalities: ['audio', 'video'],
    });
  });

  it('accepts call.reject with a callback URI', () => {
    expect(
      parsed({
        type: 'call.reject',
        callId: CALL_ID,
        at: AT,
        reason: 'busy',
        callbackUri: 'https://bot.contoso.com/api/calling',
      }),
    ).toEqual({
      type: 'call.reject',
      callId: CALL_ID,
      at: AT_MS,
      reason: 'busy',
      callbackUri: 'https://bot.contoso.com/api/calling',
    });
  });

  it('accepts call.answered', () => {
    expect(parsed({ type: 'call.answered', callId: CALL_ID, at: AT })).toEqual({
      type: 'call.answered',
      callId: CALL_ID,
      at: AT_MS,
    });
  });

  it('accepts call.terminated with resultInfo', () => {
    expect(
      parsed({
        type: 'call.terminated',
        callId: CALL_ID,
        at: AT,
        code: '0',
        subcode: '5001',
        message: 'Call ended by the caller',
      }),
    ).toEqual({
      type: 'call.terminated',
      callId: CALL_ID,
      at: AT_MS,
      code: '0',
      subcode: '5001',
      message: 'Call ended by the caller',
    });
  });

  it('accepts call.terminated without resultInfo', () => {
    expect(parsed({ type: 'call.terminated', callId: CALL_ID, at: AT })).toEqual({
      type: 'call.terminated',
      callId: CALL_ID,
      at: AT_MS,
    });
  });
});

describe('normalisation', () => {
  it('canonicalises the call id', () => {
    expect(parsed({ type: 'call.answered', callId: CALL_ID_UPPER, at: AT }).callId).toBe(CALL_ID);
  });

  it.each(['BUSY', 'Busy', 'bUsY'])('reads the reason %j as busy', (reason) => {
    expect(parsed({ type: 'call.reject', callId: CALL_ID, at: AT, reason })).toMatchObject({
      reason: 'busy',
    });
  });

  it.each(['None', 'FORBIDDEN'])('sends the reason %j in lower case', (reason) => {
    expect(parsed({ type: 'call.reject', callId: CALL_ID, at: AT, reason })).toMatchObject({
      reason: reason.toLowerCase(),
    });
  });

  it('turns numeric result codes into strings', () => {
    expect(
      parsed({ type: 'call.terminated', callId: CALL_ID, at: AT, code: 0, subcode: 540000 }),
    ).toMatchObject({ code: '0', subcode: '540000' });
  });

  it('reads a time with an offset as the same instant', () => {
    expect(
      parsed({ type: 'call.answered', callId: CALL_ID, at: '2026-11-27T10:00:00+01:00' }).at,
    ).toBe(AT_MS);
  });

  it('keeps milliseconds', () => {
    expect(
      parsed({ type: 'call.answered', callId: CALL_ID, at: '2026-11-27T09:00:00.123Z' }).at,
    ).toBe(AT_MS + 123);
  });
});

describe('invalid envelopes', () => {
  describe('type', () => {
    it('names the allowed types for an unknown type', () => {
      expect(refusal({ type: 'call.hold', callId: CALL_ID, at: AT })).toBe(
        `type: ${TYPE_RULE} (got "call.hold")`,
      );
    });

    it('names the allowed types when the type is missing', () => {
      expect(refusal({ callId: CALL_ID, at: AT })).toBe(`type: ${TYPE_RULE} (got null)`);
    });

    it('refuses the machine-internal event types', () => {
      expect(refusal({ type: 'window.closed', callId: CALL_ID, at: AT })).toMatch(
        /^type: must be one of/,
      );
    });
  });

  describe('callId', () => {
    it('is required', () => {
      expect(refusal({ type: 'call.answered', at: AT })).toBe('callId: is required');
    });

    it('must be a string', () => {
      expect(refusal({ type: 'call.answered', callId: 42, at: AT })).toBe(
        'callId: must be a string',
      );
    });

    it('must not be empty', () => {
      expect(refusal({ type: 'call.answered', callId: '', at: AT })).toBe(
        'callId: must not be empty',
      );
    });

    it.each(['a.b', 'a*', 'a>', 'a b'])('must be a NATS subject token, not %j', (callId) => {
      expect(refusal({ type: 'call.answered', callId, at: AT })).toBe(
        'callId: must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)',
      );
    });
  });

  describe('at', () => {
    it('is required', () => {
      expect(refusal({ type: 'call.answered', callId: CALL_ID })).toBe('at: is required');
    });

    it.each(['2026-11-27T09:00:00', '2026-11-27', 'yesterday', '27/11/2026 09:00 +01:00'])(
      'must be an ISO-8601 date-time with an offset, not %j',
      (at) => {
        expect(refusal({ type: 'call.answered', callId: CALL_ID, at })).toBe(
          'at: must be an ISO-8601 date-time with an offset, e.g. 2026-11-27T09:00:00Z',
        );
      },
    );

    it('must be a string, not epoch milliseconds', () => {
      expect(refusal({ type: 'call.answered', callId: CALL_ID, at: AT_MS })).toBe(
        'at: must be an ISO-8601 date-time string with an offset',
      );
    });
  });

  describe('reason', () => {
    it('is required on call.reject', () => {
      expect(refusal({ type: 'call.reject', callId: CALL_ID, at: AT })).toBe('reason: is required');
    });

    it.each(['maybe', 'declined', '', 7])(
      'must be one of none, busy, forbidden, not %j',
      (reason) => {
        expect(refusal({ type: 'call.reject', callId: CALL_ID, at: AT, reason })).toBe(
          'reason: must be one of none, busy, forbidden',
        );
      },
    );
  });

  describe('callbackUri', () => {
    it.each([
      'http://bot.contoso.com/api/calling',
      '/api/calling',
      'bot.contoso.com/api/calling',
      'wss://bot.contoso.com/api/calling',
    ])('must be an absolute https: URL, not %j', (callbackUri) => {
      expect(
        refusal({ type: 'call.reject', callId: CALL_ID, at: AT, reason: 'busy', callbackUri }),
      ).toBe('callbackUri: must be an absolute https: URL');
    });
  });

  describe('call.incoming fields', () => {
    it.each([
      ['source', 'a caller', 'source: must be an object'],
      ['targets', { id: 'bot' }, 'targets: must be an array'],
      ['chatInfo', 'thread', 'chatInfo: must be an object'],
      ['meetingInfo', 7, 'meetingInfo: must be an object'],
      ['tenantId', 7, 'tenantId: must be a string'],
      ['direction', true, 'direction: must be a string'],
    ])('refuses a %s of the wrong shape', (field, value, error) => {
      expect(refusal({ type: 'call.incoming', callId: CALL_ID, at: AT, [field]: value })).toBe(
        error,
      );
    });
  });

  describe('call.terminated fields', () => {
    it('refuses a result code that is neither a string nor a number', () => {
      expect(refusal({ type: 'call.terminated', callId: CALL_ID, at: AT, code: true })).toBe(
        'code: must be a string or a number',
      );
    });

    it('refuses a message that is not a string', () => {
      expect(refusal({ type: 'call.terminated', callId: CALL_ID, at: AT, message: 5 })).toBe(
        'message: must be a string',
      );
    });
  });

  it('names every broken field at once', () => {
    const error = refusal({ type: 'call.reject', callId: 'a.b', at: 'now', reason: 'maybe' });

    expect(error.split('; ')).toEqual([
      'callId: must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)',
      'at: must be an ISO-8601 date-time with an offset, e.g. 2026-11-27T09:00:00Z',
      'reason: must be one of none, busy, forbidden',
    ]);
  });

  it.each([
    ['an array', [1, 2]],
    ['null', null],
    ['a string', 'call.reject'],
  ])('refuses %s as the message', (_, value) => {
    expect(refusal(value)).toBe('(message): must be a JSON object');
  });
});

describe('parseEnvelopeText', () => {
  it('parses JSON text', () => {
    const result = parseEnvelopeText(
      JSON.stringify({ type: 'call.answered', callId: CALL_ID, at: AT }),
    );

    expect(result).toEqual({
      ok: true,
      value: { type: 'call.answered', callId: CALL_ID, at: AT_MS },
    });
  });

  it('refuses text that is not JSON, saying so', () => {
    const result = parseEnvelopeText('{"type": "call.answered",');

    expect(result.ok).toBe(false);
    expect(result.ok ? '' : result.error).toMatch(/^\(message\): must be JSON \(/);
  });
});

describe('bounds on what an event carries', () => {
  it('cuts free text to 1 KiB: a hang-up message, a tenant id', () => {
    const parsed = parseEnvelope({
      type: 'call.terminated',
      callId: 'c1',
      at: '2026-11-27T09:00:00Z',
      message: 'x'.repeat(500_000),
    });
    expect(
      parsed.ok && parsed.value.type === 'call.terminated' && parsed.value.message?.length,
    ).toBe(1024);
  });

  it('bounds a pass-through object to 1 KiB of JSON', () => {
    const source = { identity: { user: { displayName: 'A'.repeat(10_000) } } };
    const parsed = parseEnvelope({
      type: 'call.incoming',
      callId: 'c1',
      at: '2026-11-27T09:00:00Z',
      source,
      extra: 'y'.repeat(5_000),
    });
    if (!parsed.ok || parsed.value.type !== 'call.incoming') throw new Error('not parsed');
    expect(JSON.stringify(parsed.value.source).length).toBeLessThanOrEqual(1_100);
    expect(String((parsed.value as Record<string, unknown>).extra)).toHaveLength(1024);
  });

  it('quotes at most 200 characters of a wrong type, and never V8 snippets of text that is not JSON', () => {
    const wrong = parseEnvelope({ type: 'z'.repeat(10_000), callId: 'c1' });
    expect(wrong.ok ? '' : wrong.error).toHaveLength(
      'type: must be one of call.incoming, call.reject, call.answered, call.terminated (got "")'
        .length + 200,
    );
    const text = parseEnvelopeText('{"secret name": Ada Lovelace}');
    expect(text).toEqual({ ok: false, error: '(message): must be JSON (it is not valid JSON)' });
  });

  it('refuses JSON nested deeper than 32 levels', () => {
    const deep = `${'['.repeat(50)}${']'.repeat(50)}`;
    expect(parseEnvelopeText(`{"type": "call.incoming", "x": ${deep}}`)).toEqual({
      ok: false,
      error: '(message): must not nest deeper than 32 levels',
    });
  });
});
