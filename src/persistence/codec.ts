import {
  isFinalState,
  MACHINE_VERSION,
  type StateValue,
  stateNameOf,
} from '../../machines/states.js';
import type { LifecycleRecord } from '../contract/records.js';
import type { Intake } from '../runtime/intake.js';
import type { Loaded, StoredCall } from './store.js';

/**
 * The stored form of a call: `{"v", "seq", "applied", "snapshot",
 * "records"?}` or the same with `"held"`, where `v` is the version of the
 * statechart that made the snapshot (`MACHINE_VERSION`), `applied` the
 * stream sequences of the messages whose effects the value holds (and
 * `floor`, when set: every message up to it), `seq` the highest of them,
 * `records` the lifecycle records of the change(s) the value stores,
 * `writtenAt` when it was written, and `unprompted: true` when no message
 * caused a change with records (see {@link StoredCall}).
 *
 * Values of other versions are never restored blindly:
 * - a value without `v` was written before versions were stored, by the
 *   machine of version 1, and is read as version 1; without `applied`,
 *   every message up to its `seq` counts as taken in, as it did then;
 * - a snapshot of any other version is refused with an error naming both
 *   versions; the host reports the call and leaves its key untouched.
 * Held events are wire-format envelopes, the same in every version.
 */

const DECODER = new TextDecoder();
/** The version of values written without `v`. */
const UNVERSIONED = 1;

export function encodeCall(call: StoredCall): Uint8Array {
  const { intake, ...form } = call;
  // Buffer.from takes small strings from a shared pool: about a third of TextEncoder's time here.
  return Buffer.from(
    JSON.stringify({
      v: MACHINE_VERSION,
      // The highest message taken in: what values without `applied` say.
      seq: Math.max(intake.floor, intake.seqs.at(-1) ?? 0),
      applied: intake.seqs,
      ...(intake.floor > 0 && { floor: intake.floor }),
      ...form,
    }),
    'utf8',
  );
}

export function decodeCall(data: Uint8Array): Loaded {
  let value: unknown;
  try {
    value = JSON.parse(DECODER.decode(data));
  } catch {
    return { ok: false, error: 'the stored value is not JSON', data };
  }
  if (typeof value !== 'object' || value === null) {
    return { ok: false, error: 'the stored value is not an object', data };
  }
  const {
    v = UNVERSIONED,
    seq,
    applied,
    floor,
    snapshot,
    held,
    records,
    writtenAt,
    unprompted,
  } = value as Record<string, unknown>;
  if (typeof seq !== 'number') return { ok: false, error: 'the stored value has no seq', data };
  const intake = intakeOf(seq, applied, floor);
  const kept = {
    ...(Array.isArray(records) && { records: records as LifecycleRecord[] }),
    ...(typeof writtenAt === 'number' && { writtenAt }),
    ...(unprompted === true && { unprompted }),
  };
  if (Array.isArray(held)) return { ok: true, call: { held, intake, ...kept } };
  if (typeof snapshot !== 'object' || snapshot === null) {
    return { ok: false, error: 'the stored value has neither a snapshot nor held events', data };
  }
  if (v !== MACHINE_VERSION) {
    return {
      ok: false,
      error: `the snapshot was stored by machine version ${JSON.stringify(v)}; this service runs version ${MACHINE_VERSION} and does not restore it`,
      data,
    };
  }
  return { ok: true, call: { snapshot, intake, ...kept } as StoredCall };
}

function intakeOf(seq: number, applied: unknown, floor: unknown): Intake {
  if (!Array.isArray(applied)) return { floor: seq, seqs: [] };
  const seqs = applied.filter((n): n is number => Number.isSafeInteger(n)).sort((a, b) => a - b);
  return { floor: typeof floor === 'number' ? floor : 0, seqs };
}

/** Whether a stored call is final: it is never written again. */
export function isFinalStored(call: StoredCall): boolean {
  return 'snapshot' in call && isFinalState(stateNameOf(call.snapshot.value as StateValue));
}
