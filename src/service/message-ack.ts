import type { Stored } from '../persistence/store.js';

/** A consumed message, as the pipeline reads and acknowledges it (a JetStream `JsMsg` is one). */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  /** The stream sequence. */
  readonly seq: number;
  /** The message was delivered before. */
  readonly redelivered: boolean;
  readonly info: {
    /** How often it has been delivered, this time included. */
    readonly deliveryCount: number;
    /**
     * When the stream stored it (ns since the epoch, as a number: read from
     * the delivery info parsed once, where `JsMsg.timestampNanos` would split
     * the reply subject again for a bigint).
     */
    readonly timestampNanos: number;
  };
  ack(): void;
  nak(delayMs?: number): void;
  /** Acknowledge it as never to be delivered again. */
  term(reason?: string): void;
}

/** A message is tried this often before it is reported and terminated. */
export const MAX_DELIVERIES = 8;
/** The first retry waits this long; each later one twice as long, up to {@link MAX_RETRY_DELAY_MS}. */
const RETRY_DELAY_MS = 1_000;
const MAX_RETRY_DELAY_MS = 30_000;

/** Called when a message failed its last attempt: it is terminated after. */
export type GiveUp = (msg: InboundMessage, error: Error) => void;

/**
 * One message's acknowledgement: it is acknowledged once it has been applied
 * and every write it caused is stored, and redelivered (after a back-off
 * that doubles from a second) if one failed, at most {@link MAX_DELIVERIES}
 * times in all: then it is given up on (reported) and terminated, never
 * redelivered for ever. The acknowledgement is sent from the callback of the
 * last write, while NATS's replies are being read, so acknowledgements leave
 * in batches.
 */
export class MessageAck {
  readonly seq: number;
  readonly #msg: InboundMessage;
  readonly #giveUp: GiveUp | undefined;
  #waiting = 0;
  #open = true;
  #failure: Error | undefined;

  constructor(msg: InboundMessage, giveUp?: GiveUp) {
    this.#msg = msg;
    this.#giveUp = giveUp;
    this.seq = msg.seq;
  }

  /** One more write the message waits for: call what this returns when it is stored, or failed. */
  wait(): Stored {
    this.#waiting++;
    return (error) => {
      if (error) this.#failure = error;
      this.#waiting--;
      this.#settle();
    };
  }

  /** Every event of the message has been delivered. */
  applied(): void {
    this.#open = false;
    this.#settle();
  }

  /** The message could not be handled: it comes back, or (its last attempt) is given up on. */
  fail(error: Error): void {
    this.#open = false;
    this.#failure = error;
    this.#settle();
  }

  #settle(): void {
    if (this.#open || this.#waiting > 0) return;
    try {
      this.#answer(this.#msg, this.#failure);
    } catch {
      // The connection closed under it: JetStream delivers the message again.
    }
  }

  #answer(msg: InboundMessage, failure: Error | undefined): void {
    if (!failure) {
      msg.ack();
      return;
    }
    const attempt = msg.info.deliveryCount;
    if (attempt < MAX_DELIVERIES) {
      msg.nak(Math.min(MAX_RETRY_DELAY_MS, RETRY_DELAY_MS * 2 ** (attempt - 1)));
      return;
    }
    this.#giveUp?.(msg, failure);
    msg.term(failure.message);
  }
}
