/**
 * Calls restored with a reject request in flight at the crash, not sent
 * again yet, in the order they were restored (earliest deadline first when
 * the host restores them so). A call is recovered when its turn comes, or
 * sooner, when an event or a timer reaches it first.
 */
export class Recovery {
  readonly #pending = new Set<string>();

  get size(): number {
    return this.#pending.size;
  }

  add(callId: string): void {
    this.#pending.add(callId);
  }

  /** Whether the call was waiting to be recovered; it no longer is. */
  take(callId: string): boolean {
    return this.#pending.delete(callId);
  }

  /** The next `max` calls to recover, in order. */
  next(max: number): string[] {
    const ids: string[] = [];
    for (const callId of this.#pending) {
      if (ids.length >= max) break;
      ids.push(callId);
    }
    return ids;
  }

  clear(): void {
    this.#pending.clear();
  }
}
