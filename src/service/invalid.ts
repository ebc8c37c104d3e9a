import type { InvalidRecord } from '../contract/records.js';

const DECODER = new TextDecoder('utf-8', { fatal: true });

/** The invalid record of a message that could not be used: its text, or base64 when it is not UTF-8. */
export function invalidRecord(
  subject: string,
  data: Uint8Array,
  error: string,
  at: number,
): InvalidRecord {
  let payload: string;
  try {
    payload = DECODER.decode(data);
  } catch {
    payload = Buffer.from(data).toString('base64');
  }
  return { subject, error, payload, at: new Date(at).toISOString() };
}
