import type { JetStreamClient } from '@nats-io/jetstream';
import { partitionSubject } from '../bus/jetstream.js';
import type { CallEnvelope } from '../contract/events.js';
import type { Log } from '../log.js';
import { partitionOf } from '../ownership/partition.js';
import { type DecodeSubjects, decodeMessage } from './decode.js';
import type { InvalidReporter } from './invalid.js';
import type { InboundMessage } from './message-ack.js';
import type { Metrics } from './metrics.js';

export interface RouterOptions {
  readonly js: JetStreamClient;
  readonly prefix: string;
  readonly stream: string;
  readonly partitions: number;
  readonly subjects: DecodeSubjects;
  readonly reportInvalid: InvalidReporter;
  readonly metrics: Metrics;
  readonly log: Log;
}

const ENCODER = new TextEncoder();

/**
 * Partition 0's router: validate an event published without a partition (or
 * translate a notification batch), and republish each event to its call's
 * partition. One router, publishing in the order it consumes, keeps each
 * call's events in order. The message is acknowledged once every copy is
 * stored; a redelivered one is republished with the same message ids, which
 * the stream's duplicate window drops.
 */
export function createRouter(options: RouterOptions): (msg: InboundMessage) => void {
  const { js, prefix, stream, partitions, subjects, metrics, log } = options;
  return (msg) => {
    metrics.messages.inc();
    let events: CallEnvelope[];
    try {
      const decoded = decodeMessage(msg, subjects);
      for (const bad of decoded.invalid) {
        const what = bad.part === undefined ? msg.data : { part: bad.part };
        options.reportInvalid(msg.subject, what, bad.error);
      }
      events = decoded.events;
    } catch (error) {
      log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'message routing failed');
      msg.nak(1_000);
      return;
    }
    const fromNotifications = msg.subject === subjects.notifications;
    const copies = events.map((envelope, i) =>
      publishToPartition(
        js,
        { prefix, partitions },
        envelope.callId,
        fromNotifications ? ENCODER.encode(JSON.stringify(wireForm(envelope))) : msg.data,
        `${stream}:${msg.seq}:${i}`,
      ),
    );
    Promise.all(copies).then(
      () => msg.ack(),
      (error: unknown) => {
        log.error({ err: error, subject: msg.subject, seq: msg.seq }, 'could not route a message');
        msg.nak(1_000);
      },
    );
  };
}

/**
 * A copy of an event in its call's partition
 * (`<prefix>.partition.<n>.<callId>`), stored once per `msgID` within the
 * stream's duplicate window.
 */
export async function publishToPartition(
  js: JetStreamClient,
  target: { readonly prefix: string; readonly partitions: number },
  callId: string,
  data: Uint8Array,
  msgID: string,
): Promise<void> {
  const partition = partitionOf(callId, target.partitions);
  await js.publish(partitionSubject(target.prefix, partition, callId), data, { msgID });
}

/** An event as published on the bus (its time as ISO-8601 text), from its parsed form. */
function wireForm(envelope: CallEnvelope): Record<string, unknown> {
  return { ...envelope, at: new Date(envelope.at).toISOString() };
}
