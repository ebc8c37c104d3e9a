import type { JetStreamManager } from '@nats-io/jetstream';

/**
 * Every `intervalMs`, read the consumer's pending and unacknowledged
 * messages and hand their sum to `report` (a gauge). Returns a stopper.
 */
export function watchConsumerLag(
  jsm: JetStreamManager,
  consumer: { readonly stream: string; readonly name: string },
  report: (messages: number) => void,
  intervalMs = 5_000,
): () => void {
  const timer = setInterval(() => {
    jsm.consumers
      .info(consumer.stream, consumer.name)
      .then((info) => report(info.num_pending + info.num_ack_pending))
      .catch(() => {});
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
