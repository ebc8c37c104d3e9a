import { createHash } from 'node:crypto';

/**
 * Which member should own each partition: every member ranks the
 * partitions by a hash of (partition, member) (rendezvous hashing), and
 * each partition goes to the highest-ranked member that has fewer than its
 * fair share (`ceil(count / members)`). Every instance that sees the same
 * members computes the same answer; a member that joins or leaves moves
 * about a fair share of partitions, not all of them.
 *
 * @example
 * assign(12, ['a', 'b', 'c']); // Map { 0 => 'b', 1 => 'a', … }: four each
 */
export function assign(count: number, members: readonly string[]): Map<number, string> {
  const owners = new Map<number, string>();
  if (members.length === 0) return owners;
  const share = Math.ceil(count / members.length);
  const load = new Map(members.map((member) => [member, 0]));
  for (let partition = 0; partition < count; partition++) {
    const ranked = [...members].sort(
      (a, b) => rank(partition, b) - rank(partition, a) || (a < b ? -1 : 1),
    );
    const owner = ranked.find((member) => (load.get(member) ?? 0) < share) ?? ranked[0];
    if (owner === undefined) continue;
    owners.set(partition, owner);
    load.set(owner, (load.get(owner) ?? 0) + 1);
  }
  return owners;
}

function rank(partition: number, member: string): number {
  return createHash('sha256').update(`${partition}/${member}`).digest().readUInt32BE(0);
}
