/**
 * Tokens that verified in full, kept by their exact text: Graph puts the same
 * token on many notifications, and a token seen before skips the signature
 * check and the key lookup. An entry is used only while its lifetime holds at
 * the moment of use (`nbf` and `exp`, with the verifier's clock tolerance)
 * and while the key set it was verified against is still the one in use;
 * otherwise it is dropped and the token is verified in full again. At most
 * `maxEntries` are kept: expired entries leave first, then the least
 * recently used.
 */

export interface TokenCacheOptions {
  /** Entries kept at most (≥ 1). */
  readonly maxEntries: number;
  /** The verifier's allowed clock skew for `nbf` and `exp`, in seconds. */
  readonly clockToleranceSec: number;
}

/** What is kept for one token. */
export interface CachedToken<T> {
  /** What the full verification gave. */
  readonly value: T;
  /** The token's `exp`, epoch seconds. */
  readonly exp: number;
  /** The token's `nbf`, epoch seconds, when it has one. */
  readonly nbf?: number | undefined;
  /** The key set generation read before the token was verified. */
  readonly generation: number;
}

/**
 * @example
 * const cache = new TokenCache<Accepted>({ maxEntries: 256, clockToleranceSec: 60 });
 * const hit = cache.get(token, { nowSec, generation: resolver.generation() });
 * if (hit) return hit;
 * const result = await verifyInFull(token);
 * if (result.ok) cache.set(token, { value: result, exp, nbf, generation }, nowSec);
 */
export class TokenCache<T> {
  readonly #entries = new Map<string, CachedToken<T>>();
  readonly #maxEntries: number;
  readonly #toleranceSec: number;

  constructor(options: TokenCacheOptions) {
    if (!(Number.isInteger(options.maxEntries) && options.maxEntries >= 1)) {
      throw new TypeError('maxEntries: must be a whole number ≥ 1');
    }
    if (!(options.clockToleranceSec >= 0)) throw new TypeError('clockToleranceSec: must be ≥ 0');
    this.#maxEntries = options.maxEntries;
    this.#toleranceSec = options.clockToleranceSec;
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The value kept for `token` when it is valid at `nowSec` and was verified
   * under `generation`; otherwise `undefined`, and the entry is dropped.
   */
  get(token: string, at: { nowSec: number; generation: number }): T | undefined {
    const entry = this.#entries.get(token);
    if (entry === undefined) return undefined;
    this.#entries.delete(token);
    if (entry.generation !== at.generation || !this.#isValid(entry, at.nowSec)) return undefined;
    this.#entries.set(token, entry); // now the most recently used
    return entry.value;
  }

  /** Keep `entry` for `token`, making room when full. */
  set(token: string, entry: CachedToken<T>, nowSec: number): void {
    this.#entries.delete(token);
    if (!this.#isValid(entry, nowSec)) return;
    if (this.#entries.size >= this.#maxEntries) this.#dropExpired(nowSec);
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
    this.#entries.set(token, entry);
  }

  /** jose's own checks, with the same tolerance: `nbf > now + tolerance` or `exp <= now - tolerance` fail. */
  #isValid(entry: CachedToken<T>, nowSec: number): boolean {
    if (entry.nbf !== undefined && entry.nbf > nowSec + this.#toleranceSec) return false;
    return entry.exp > nowSec - this.#toleranceSec;
  }

  #dropExpired(nowSec: number): void {
    for (const [token, entry] of this.#entries) {
      if (entry.exp <= nowSec - this.#toleranceSec) this.#entries.delete(token);
    }
  }
}
