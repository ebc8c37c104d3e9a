import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalCallId } from '../../src/contract/call-id.js';

const DASHED = '57dab8b1-894c-409a-b240-bd8beae78896';
const TOKEN_RULE =
  'must be ASCII letters, digits, "-" and "_" only (no ".", "*", ">", white space, ":" or other characters)';

describe('canonicalCallId', () => {
  describe('GUID call ids', () => {
    it.each([
      ['upper case without dashes', '57DAB8B1894C409AB240BD8BEAE78896'],
      ['upper case with dashes', '57DAB8B1-894C-409A-B240-BD8BEAE78896'],
      ['lower case without dashes', '57dab8b1894c409ab240bd8beae78896'],
      ['lower case with dashes', DASHED],
      ['mixed case with stray dashes', '57dAB8b1-894c409a-b240bd8b-EAE78896'],
    ])('turns %s into the lower-case dashed form', (_, raw) => {
      expect(canonicalCallId(raw)).toEqual({ ok: true, callId: DASHED });
    });

    it('names the same call for every spelling Graph uses', () => {
      fc.assert(
        fc.property(
          fc.stringMatching(/^[0-9a-f]{32}$/),
          fc.boolean(),
          fc.boolean(),
          (hex, upper, dashed) => {
            const dashes = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
            const spelling = dashed ? dashes : hex;
            const raw = upper ? spelling.toUpperCase() : spelling;

            expect(canonicalCallId(raw)).toEqual({ ok: true, callId: dashes });
          },
        ),
      );
    });
  });

  describe('other call ids', () => {
    it.each([
      ['Call-ABC_1', 'callabc_1'],
      ['421F1100-2D4F', '421f11002d4f'],
      ['x', 'x'],
      // 31 hex digits: not a GUID, so it stays undashed.
      ['57DAB8B1894C409AB240BD8BEAE7889', '57dab8b1894c409ab240bd8beae7889'],
      // 32 characters but not all hex.
      ['57DAB8B1894C409AB240BD8BEAE7889G', '57dab8b1894c409ab240bd8beae7889g'],
    ])('lower-cases %j and drops its dashes', (raw, callId) => {
      expect(canonicalCallId(raw)).toEqual({ ok: true, callId });
    });

    it('gives the same id for a canonical id as for the raw one (idempotent)', () => {
      fc.assert(
        fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,40}$/), (raw) => {
          const first = canonicalCallId(raw);
          fc.pre(first.ok);
          if (!first.ok) return;

          expect(canonicalCallId(first.callId)).toEqual(first);
        }),
      );
    });
  });

  describe('ids that cannot be a NATS subject token', () => {
    it('refuses an empty id', () => {
      expect(canonicalCallId('')).toEqual({ ok: false, rule: 'must not be empty' });
    });

    it('refuses an id made only of dashes, which is empty once canonical', () => {
      expect(canonicalCallId('---')).toEqual({ ok: false, rule: 'must not be empty' });
    });

    it.each([
      ['a dot', 'call.1'],
      ['a star', 'call*'],
      ['a greater-than sign', 'call>'],
      ['a space', 'call 1'],
      ['a tab', 'call\t1'],
      ['a new line', 'call\n'],
      ['a leading space', ' 57DAB8B1894C409AB240BD8BEAE78896'],
    ])('refuses an id with %s', (_, raw) => {
      expect(canonicalCallId(raw)).toEqual({ ok: false, rule: TOKEN_RULE });
    });
  });
});

describe('canonicalCallId: the id rules of the contract', () => {
  it('takes a GUID in braces as the bare GUID', () => {
    expect(canonicalCallId('{57DAB8B1-894C-409A-B240-BD8BEAE78896}')).toEqual({
      ok: true,
      callId: DASHED,
    });
  });

  it('refuses braces around anything but a GUID', () => {
    expect(canonicalCallId('{abc}')).toEqual({
      ok: false,
      rule: 'may be in braces only when it is a GUID',
    });
  });

  it.each([
    ['a colon', 'call:1'],
    ['a brace', 'call{1'],
    ['a dollar sign', 'call$1'],
    ['a non-ASCII letter', 'callé'],
  ])('refuses an id with %s', (_, raw) => {
    expect(canonicalCallId(raw)).toEqual({ ok: false, rule: TOKEN_RULE });
  });

  it('takes 128 characters and refuses 129, and refuses long input before any work', () => {
    expect(canonicalCallId('a'.repeat(128))).toEqual({ ok: true, callId: 'a'.repeat(128) });
    expect(canonicalCallId('a'.repeat(129))).toEqual({
      ok: false,
      rule: 'must be at most 128 characters',
    });
    expect(canonicalCallId('a'.repeat(4_060))).toEqual({
      ok: false,
      rule: 'must be at most 128 characters',
    });
  });
});
