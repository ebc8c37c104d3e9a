/**
 * The messages a call has taken in, by their stream sequences: those whose
 * effects its stored form holds. A redelivered message is recognised by
 * being here, not by its number being below some high-water mark: a later
 * message may reach a call before an earlier one is redelivered (after a
 * crash), and the earlier one must still be applied.
 */
export interface Intake {
  /** Every message up to this sequence counts as taken in (what older stored calls say). */
  readonly floor: number;
  /** Messages above the floor, in ascending order. */
  readonly seqs: readonly number[];
}

export const NO_INTAKE: Intake = { floor: 0, seqs: [] };

/** A call takes in a handful of messages; past this, the oldest fold into the floor. */
const MAX_SEQS = 64;

export function hasTaken(intake: Intake, seq: number): boolean {
  return seq <= intake.floor || intake.seqs.includes(seq);
}

/** The intake with one more message. */
export function takeIn(intake: Intake, seq: number): Intake {
  if (hasTaken(intake, seq)) return intake;
  // `concat` sizes the array exactly; a spread would leave room for 16 (152 bytes kept per call).
  const seqs = intake.seqs.concat(seq).sort((a, b) => a - b);
  if (seqs.length <= MAX_SEQS) return { floor: intake.floor, seqs };
  const dropped = seqs.splice(0, seqs.length - MAX_SEQS);
  return { floor: Math.max(intake.floor, ...dropped), seqs };
}
