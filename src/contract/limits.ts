/**
 * The bounds every input is held to, whatever its shape, so that no single
 * message can cost more than a few milliseconds or a few kilobytes.
 */
export const LIMITS = {
  /** An event envelope on `<prefix>.events.*`, in bytes. */
  envelopeBytes: 64 * 1024,
  /** Free text from Graph or a bot (a message, a name, a pass-through field), in characters. */
  fieldChars: 1024,
  /** Events held for one call not seen yet. */
  heldEvents: 64,
  /** Their size together, in bytes of JSON. */
  heldBytes: 256 * 1024,
  /** The `payload` of an invalid record, in characters. */
  invalidPayloadChars: 64 * 1024,
  /** How much of the input an error may quote. */
  echoChars: 200,
  /** How deeply JSON may nest. */
  jsonDepth: 32,
  /** Notifications read from one Graph batch. */
  batchItems: 100,
} as const;

/** `text` cut to `max` characters, with `…` where it was cut. */
export function truncated(text: string, max: number = LIMITS.fieldChars): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * A pass-through value (a Graph object or string) bounded to `max`
 * characters of JSON: as it is when small enough, otherwise its JSON text cut.
 */
export function boundedValue(value: unknown, max: number = LIMITS.fieldChars): unknown {
  if (typeof value === 'string') return truncated(value, max);
  const text = JSON.stringify(value);
  return text === undefined || text.length <= max ? value : truncated(text, max);
}

/**
 * How an error quotes what it got: ` (got "…")` with at most
 * {@link LIMITS.echoChars} characters of the input as a JSON string, or
 * ` (got null)` for null, a boolean or a number; so the quote can be found
 * and left out where the input must not go, as in logs.
 */
export function got(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'number') {
    return ` (got ${JSON.stringify(value)})`;
  }
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return ` (got ${JSON.stringify(truncated(text, LIMITS.echoChars))})`;
}

const GOT = / \(got (?:"(?:[^"\\]|\\.)*"|null|true|false|[-+.\deE]+)\)/g;

/** An error without the input it quotes (for log lines, which must not carry it). */
export function withoutQuotes(error: string): string {
  return error.replace(GOT, '');
}
