import { describe, expect, it } from 'vitest';
import { type CachedToken, TokenCache } from '../../src/webhook/token-cache.js';

const T = 1_800_000_000;
const at = (nowSec: number, generation = 1) => ({ nowSec, generation });
const entry = (value: string, fields: Partial<CachedToken<string>> = {}): CachedToken<string> => ({
  value,
  exp: T + 3600,
  nbf: T - 60,
  generation: 1,
  ...fields,
});

function cache(maxEntries = 3, clockToleranceSec = 60) {
  return new TokenCache<string>({ maxEntries, clockToleranceSec });
}

describe('TokenCache', () => {
  it('gives back what was kept for the exact token', () => {
    const tokens = cache();
    tokens.set('a.b.c', entry('verdict'), T);
    expect(tokens.get('a.b.c', at(T))).toBe('verdict');
    expect(tokens.get('a.b.C', at(T))).toBeUndefined();
  });

  it('holds a token until exp plus the tolerance, then drops it', () => {
    const tokens = cache();
    tokens.set('t', entry('v', { exp: T + 100 }), T);
    expect(tokens.get('t', at(T + 159))).toBe('v');
    expect(tokens.get('t', at(T + 160))).toBeUndefined();
    expect(tokens.size).toBe(0);
    expect(tokens.get('t', at(T))).toBeUndefined();
  });

  it('gives nothing for a token before nbf minus the tolerance (a clock set back)', () => {
    const tokens = cache();
    tokens.set('t', entry('v', { nbf: T + 30 }), T);
    expect(tokens.get('t', at(T - 30))).toBe('v');
    expect(tokens.get('t', at(T - 31))).toBeUndefined();
  });

  it('gives nothing for a token verified under another key set generation', () => {
    const tokens = cache();
    tokens.set('t', entry('v', { generation: 1 }), T);
    expect(tokens.get('t', at(T, 2))).toBeUndefined();
    expect(tokens.get('t', at(T, 1))).toBeUndefined();
  });

  it('does not keep a token that is not valid when it is set', () => {
    const tokens = cache();
    tokens.set('old', entry('v', { exp: T - 60 }), T);
    tokens.set('early', entry('v', { nbf: T + 61 }), T);
    expect(tokens.size).toBe(0);
  });

  it('stays within its bound, the least recently used leaving first', () => {
    const tokens = cache(3);
    for (const token of ['a', 'b', 'c']) tokens.set(token, entry(token), T);
    expect(tokens.get('a', at(T))).toBe('a');
    tokens.set('d', entry('d'), T);
    expect(tokens.size).toBe(3);
    expect(tokens.get('b', at(T))).toBeUndefined();
    expect(['a', 'c', 'd'].map((token) => tokens.get(token, at(T)))).toEqual(['a', 'c', 'd']);
  });

  it('drops expired tokens before a live one when full', () => {
    const tokens = cache(3);
    tokens.set('a', entry('a'), T);
    tokens.set('b', entry('b', { exp: T + 10 }), T);
    tokens.set('c', entry('c', { exp: T + 10 }), T);
    tokens.set('d', entry('d'), T + 100);
    expect(tokens.size).toBe(2);
    expect(tokens.get('a', at(T + 100))).toBe('a');
    expect(tokens.get('d', at(T + 100))).toBe('d');
  });

  it('holds at most its bound however many tokens pass', () => {
    const tokens = cache(256);
    for (let i = 0; i < 1_000; i++) tokens.set(`token-${i}`, entry(String(i)), T);
    expect(tokens.size).toBe(256);
    expect(tokens.get('token-743', at(T))).toBeUndefined();
    expect(tokens.get('token-744', at(T))).toBe('744');
  });

  it('refuses a bound below one or a negative tolerance', () => {
    expect(() => cache(0)).toThrow(TypeError);
    expect(() => cache(1.5)).toThrow(TypeError);
    expect(() => cache(3, -1)).toThrow(TypeError);
  });
});
