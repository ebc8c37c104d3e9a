/**
 * Work that sends to NATS, gathered over one turn of the event loop and run
 * together in a single `setImmediate` callback.
 *
 * The NATS client writes its pending commands to the socket at the end of
 * each microtask checkpoint. Sends spread over many callbacks therefore cost a
 * socket write each (about 20 µs of system time here, and as much again in
 * nats-server). Run back to back, they leave in one write.
 */
export interface Outbox {
  /** Run `send` in this turn's batch, after what was deferred before it. */
  defer(send: () => void): void;
  /** Run everything deferred so far, now. */
  flush(): void;
}

export function createOutbox(onError: (error: unknown) => void): Outbox {
  let queue: Array<() => void> = [];
  let scheduled = false;

  function flush(): void {
    scheduled = false;
    // Sends deferred while flushing go into the next batch.
    const batch = queue;
    queue = [];
    for (const send of batch) {
      try {
        send();
      } catch (error) {
        onError(error);
      }
    }
  }

  return {
    defer(send) {
      queue.push(send);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}
