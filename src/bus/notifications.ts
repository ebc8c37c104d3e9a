import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';

/**
 * Where the webhook stores Graph's notification batches: the stream's
 * notifications subject, through JetStream (the stream's ack awaited), with
 * Graph's correlation headers and its message id for deduplication. Until
 * the bus is up it refuses, and the webhook answers 503 so Graph sends again.
 */
export class NotificationIntake {
  readonly #subject: string;
  #js: JetStreamClient | undefined;
  #isReady: () => boolean = () => false;

  constructor(subject: string) {
    this.#subject = subject;
  }

  /** The bus is up: publish through `js` while `isReady()` says the service consumes. */
  open(js: JetStreamClient, isReady: () => boolean): void {
    this.#js = js;
    this.#isReady = isReady;
  }

  async publish(body: Uint8Array, fields: Record<string, string>): Promise<void> {
    if (!this.#js || !this.#isReady()) throw new Error('not connected to NATS yet');
    const h = natsHeaders();
    for (const [name, value] of Object.entries(fields)) h.set(name, value);
    const messageId = fields['x-microsoft-skype-message-id'];
    await this.#js.publish(this.#subject, body, {
      headers: h,
      ...(messageId && { msgID: messageId }),
    });
  }
}
