/** The acknowledgements a consumed message offers (a JetStream `JsMsg` has both). */
export interface Acknowledgeable {
  ack(): void;
  nak(delayMs?: number): void;
}

/**
 * One message's writes: it is acknowledged once it has been applied and every
 * write it caused is stored, and redelivered (after a second) if one failed.
 * The acknowledgement is sent from the callback of the last write, while
 * NATS's replies are being read, so acknowledgements leave in batches.
 */
export interface MessageWrites {
  waiting: number;
  stored(error?: Error): void;
  applied(): void;
  fail(): void;
}

export function messageWrites(msg: Acknowledgeable): MessageWrites {
  let open = true;
  let failed = false;
  const settle = (state: MessageWrites) => {
    if (open || state.waiting > 0) return;
    if (failed) msg.nak(1_000);
    else msg.ack();
  };
  const state: MessageWrites = {
    waiting: 0,
    stored(error) {
      if (error) failed = true;
      state.waiting--;
      settle(state);
    },
    applied() {
      open = false;
      settle(state);
    },
    fail() {
      open = false;
      failed = true;
      settle(state);
    },
  };
  return state;
}
