import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Member ids that say where their process runs, so that an instance can tell
 * a member of its own machine whose process has ended from one that merely
 * has not sent a heartbeat lately.
 *
 * A place is the kernel's boot id and the inode of the process-id namespace:
 * two processes share it only when they run on the same machine, in the same
 * boot, and see each other's process ids (the top-level namespace has the
 * same inode on every Linux machine, and host names repeat, so neither is
 * enough alone). A member id is `<host>-<place>-<pid>-<start>-<random>`,
 * where `<start>` is when the process started (clock ticks after boot): a
 * process id used again by another process is not mistaken for the member.
 */

const TAIL = /-([0-9a-f]{12}\.\d+|x)-(\d+)-(\d+|x)-[a-z0-9]+$/;

/** This process's place, or `undefined` where it cannot be read (not Linux). */
export function placeOfThisProcess(): string | undefined {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/[^0-9a-f]/g, '');
    const namespace = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return boot.length >= 12 && namespace ? `${boot.slice(0, 12)}.${namespace}` : undefined;
  } catch {
    return undefined;
  }
}

/** When the process started, in clock ticks after boot (`/proc/<pid>/stat`, field 22). */
export function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: count the fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * A member id unique to this process.
 *
 * @example
 * memberId(placeOfThisProcess()) // 'web-1-d42a4be76c7a.4026531836-4242-1290548-k3j9x2'
 */
export function memberId(
  place: string | undefined,
  pid = process.pid,
  start = startOf(pid),
): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9_]/g, '_')
    .slice(0, 40);
  return `${host}-${place ?? 'x'}-${pid}-${start ?? 'x'}-${Math.random().toString(36).slice(2, 8)}`;
}

/** How a process is looked up: whether the id exists, and its start when it can be read. */
export interface ProcessTable {
  exists(pid: number): boolean;
  startOf(pid: number): string | undefined;
}

const THIS_MACHINE: ProcessTable = { exists: processExists, startOf };

/**
 * Whether a member ran in this place as a process that has ended: its
 * process id is free, or taken by a process that started at another time.
 * A member elsewhere, of unknown place or start, or whose process still
 * runs (frozen, say) is judged by its heartbeat.
 */
export function goneFromThisPlace(
  member: string,
  place: string | undefined,
  processes: ProcessTable = THIS_MACHINE,
): boolean {
  const match = TAIL.exec(member);
  if (!match || place === undefined || match[1] !== place || match[3] === 'x') return false;
  const pid = Number(match[2]);
  if (!(pid > 0) || pid === process.pid) return false;
  if (!processes.exists(pid)) return true;
  const start = processes.startOf(pid);
  return start !== undefined && start !== match[3];
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by another user.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
