import type { ConsumerMessages, JetStreamClient } from '@nats-io/jetstream';
import type { BusNames } from '../bus/jetstream.js';
import type { InboundMessage } from './message-ack.js';

/** Small slices: the event loop gets back to Graph's sockets between them. */
const PULL_BATCH = 64;
/**
 * Each pull request lasts this long (its idle heartbeat half as long): a
 * pull left with a consumer leader that died (a NATS node lost) is noticed
 * and made again within seconds, not the client's default 30 s.
 */
const PULL_EXPIRES_MS = 5_000;

/** Where each consumed message goes: this instance's own, and (partition 0) the ones to route. */
export interface Handlers {
  readonly own: (msg: InboundMessage) => void;
  readonly route?: ((msg: InboundMessage) => void) | undefined;
}

/**
 * The service's subscriptions to its durable consumers: started, started
 * again (after a deleted consumer or stream was made again), and closed.
 */
export class Consumption {
  readonly #js: JetStreamClient;
  readonly #names: BusNames;
  readonly #handlers: Handlers;
  #subscriptions: ConsumerMessages[] = [];

  constructor(js: JetStreamClient, names: BusNames, handlers: Handlers) {
    this.#js = js;
    this.#names = names;
    this.#handlers = handlers;
  }

  /** Consume every consumer; when one cannot be, the others started are closed again. */
  async start(): Promise<void> {
    const { consumer, partition } = this.#names;
    const { route } = this.#handlers;
    const wanted: Array<[string, (msg: InboundMessage) => void]> = [[consumer, this.#handlers.own]];
    if (partition?.router && route) {
      wanted.push([partition.router.eventsConsumer, route]);
      wanted.push([partition.router.notificationsConsumer, route]);
    }
    const subscriptions: ConsumerMessages[] = [];
    try {
      for (const [name, callback] of wanted)
        subscriptions.push(await this.#consume(name, callback));
    } catch (error) {
      await Promise.all(subscriptions.map((messages) => messages.close()));
      throw error;
    }
    this.#subscriptions = subscriptions;
  }

  /** Consume again from consumers made anew. */
  async restart(): Promise<void> {
    await this.close();
    await this.start();
  }

  async close(): Promise<void> {
    const subscriptions = this.#subscriptions;
    this.#subscriptions = [];
    await Promise.all(subscriptions.map((messages) => messages.close()));
  }

  async #consume(name: string, callback: (msg: InboundMessage) => void): Promise<ConsumerMessages> {
    const consumer = await this.#js.consumers.get(this.#names.stream, name);
    return consumer.consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS, callback });
  }
}
