import { describe, expect, it } from 'vitest';
import { assign } from '../../src/ownership/assign.js';

function shares(owners: Map<number, string>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const owner of owners.values()) counts[owner] = (counts[owner] ?? 0) + 1;
  return counts;
}

describe('assign', () => {
  it('gives every partition an owner and each member a fair share', () => {
    expect(shares(assign(12, ['a', 'b', 'c']))).toEqual({ a: 4, b: 4, c: 4 });
    const five = Object.values(shares(assign(12, ['a', 'b', 'c', 'd', 'e'])));
    expect(five.reduce((x, y) => x + y, 0)).toBe(12);
    expect(Math.max(...five) - Math.min(...five)).toBeLessThanOrEqual(1);
    expect(assign(1, ['a', 'b', 'c']).size).toBe(1);
  });

  it('is the same whatever order the members are seen in', () => {
    expect(assign(12, ['c', 'a', 'b'])).toEqual(assign(12, ['a', 'b', 'c']));
  });

  it('moves about a fair share when a member joins, not everything', () => {
    const before = assign(12, ['a', 'b', 'c']);
    const after = assign(12, ['a', 'b', 'c', 'd']);
    const moved = [...before].filter(([partition, owner]) => after.get(partition) !== owner);
    expect(moved.length).toBeLessThanOrEqual(6);
    expect(shares(after).d).toBe(3);
  });

  it('has no owners without members', () => {
    expect(assign(12, []).size).toBe(0);
  });
});
