import type { Stored } from '../persistence/store.js';

/** A consumed message, as the pipeline reads and acknowledges it (a JetStream `JsMsg` is one). */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The stream sequence. */
  readonly seq: number;
  /** The message was delivered before. */
  readonly redelivered: boolean;
  /** When the stream stored it. */
  readonly timestampNanos: bigint;
  ack(): void;
  nak(delayMs?: number): void;
}

/** A failed write makes the message come back after this long. */
const RETRY_DELAY_MS = 1_000;

/**
 * One message's acknowledgement: it is acknowledged once it has been applied
 * and every write it caused is stored, and redelivered (after a second) if
 * one failed. The acknowledgement is sent from the callback of the last
 * write, while NATS's replies are being read, so acknowledgements leave in
 * batches.
 */
export class MessageAck {
  readonly seq: number;
  readonly #msg: Pick<InboundMessage, 'ack' | 'nak'>;
  #waiting = 0;
  #open = true;
  #failed = false;

  constructor(msg: Pick<InboundMessage, 'ack' | 'nak' | 'seq'>) {
    this.#msg = msg;
    this.seq = msg.seq;
  }

  /** One more write the message waits for: call what this returns when it is stored, or failed. */
  wait(): Stored {
    this.#waiting++;
    return (error) => {
      if (error) this.#failed = true;
      this.#waiting--;
      this.#settle();
    };
  }

  /** Every event of the message has been delivered. */
  applied(): void {
    this.#open = false;
    this.#settle();
  }

  /** The message could not be handled: it comes back. */
  fail(): void {
    this.#open = false;
    this.#failed = true;
    this.#settle();
  }

  #settle(): void {
    if (this.#open || this.#waiting > 0) return;
    if (this.#failed) this.#msg.nak(RETRY_DELAY_MS);
    else this.#msg.ack();
  }
}
