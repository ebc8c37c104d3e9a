/** Something to close, named for the log line when closing it fails. */
interface Closer {
  readonly name: string;
  readonly close: () => unknown;
}

/**
 * Resources in the order they were opened, closed in reverse: what was
 * opened last (and may use what came before) goes first. A failure to close
 * one is reported and the rest are closed anyway.
 *
 * @example
 * const stack = new CloseStack();
 * stack.push('nats', () => nc.drain());
 * stack.push('service', () => service.stop(8_000));
 * await stack.close((name, error) => log.error({ err: error }, `closing ${name} failed`));
 */
export class CloseStack {
  readonly #closers: Closer[] = [];

  push(name: string, close: () => unknown): void {
    this.#closers.push({ name, close });
  }

  async close(onError: (name: string, error: unknown) => void): Promise<void> {
    for (let closer = this.#closers.pop(); closer; closer = this.#closers.pop()) {
      try {
        await closer.close();
      } catch (error) {
        onError(closer.name, error);
      }
    }
  }
}
