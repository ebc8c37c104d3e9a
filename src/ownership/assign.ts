import { createHash } from 'node:crypto';

/**
 * Which member should own each partition: every member ranks the
 * partitions by a hash of (partition, member) (rendezvous hashing), and
 * each partition goes to the highest-ranked member that still has room:
 * each member gets `floor(count / members)`, and `count % members` of them
 * one more. Every instance that sees the same
 * members computes the same answer; a member that joins or leaves moves
 * about a fair share of partitions, not all of them.
 *
 * @example
 * assign(12, ['a', 'b', 'c']); // Map { 0 => 'b', 1 => 'a', … }: four each
 */
export function assign(count: number, members: readonly string[]): Map<number, string> {
  const owners = new Map<number, string>();
  if (members.length === 0) return owners;
  const base = Math.floor(count / members.length);
  let extra = count % members.length;
  const load = new Map(members.map((member) => [member, 0]));
  const room = (member: string) => {
    const taken = load.get(member) ?? 0;
    return taken < base || (taken === base && extra > 0);
  };
  for (let partition = 0; partition < count; partition++) {
    const ranks = new Map(members.map((member) => [member, rank(partition, member)]));
    const ranked = [...members].sort(
      (a, b) => (ranks.get(b) ?? 0) - (ranks.get(a) ?? 0) || (a < b ? -1 : 1),
    );
    const owner = ranked.find(room) ?? ranked[0];
    if (owner === undefined) continue;
    const taken = load.get(owner) ?? 0;
    if (taken === base) extra--;
    owners.set(partition, owner);
    load.set(owner, taken + 1);
  }
  return owners;
}

function rank(partition: number, member: string): number {
  return createHash('sha256').update(`${partition}/${member}`).digest().readUInt32BE(0);
}
