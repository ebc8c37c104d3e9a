import { describe, expect, it } from 'vitest';
import { hasTaken, NO_INTAKE, takeIn } from '../../src/runtime/intake.js';

describe("a call's intake", () => {
  it('knows the messages it took in, not every number below the highest', () => {
    const intake = takeIn(takeIn(NO_INTAKE, 12), 10);
    expect(intake).toEqual({ floor: 0, seqs: [10, 12] });
    expect([10, 11, 12].map((seq) => hasTaken(intake, seq))).toEqual([true, false, true]);
  });

  it('counts every message up to its floor as taken in (what older stored calls say)', () => {
    expect(hasTaken({ floor: 7, seqs: [] }, 3)).toBe(true);
    expect(hasTaken({ floor: 7, seqs: [] }, 8)).toBe(false);
  });

  it('stays bounded: past 64 messages the oldest fold into the floor', () => {
    let intake = NO_INTAKE;
    for (let seq = 1; seq <= 70; seq++) intake = takeIn(intake, seq * 2);
    expect(intake.seqs).toHaveLength(64);
    expect(intake.floor).toBe(12);
    expect(hasTaken(intake, 11)).toBe(true);
    expect(hasTaken(intake, 15)).toBe(false);
  });

  it('returns the same intake when the message is in already', () => {
    const intake = takeIn(NO_INTAKE, 4);
    expect(takeIn(intake, 4)).toBe(intake);
  });
});
