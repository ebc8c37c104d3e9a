/**
 * The naive pipeline the service is compared with, in a child process like
 * the service: a bare durable JetStream consumer on a stream and consumer made
 * by the service's own `ensureStreamAndConsumer` (explicit ack, the same ack
 * wait and max_ack_pending, the same `consume({ max_messages: 1000, callback })`
 * as the service) that, for each `call.reject`, POSTs the reject with the
 * service's Graph client (`createGraphClient`: the same undici Pool) and then
 * publishes one lifecycle record (core NATS), then acknowledges. Everything
 * else is acknowledged at once. No actors, no persistence, no validation
 * beyond JSON.parse.
 *
 * Environment: NATS_URL, SUBJECT_PREFIX, NOTIFICATIONS_SUBJECT, GRAPH_BASE_URL,
 * ANSWER_TIMEOUT_MS. Prints `ready` on stdout once consuming; exits on SIGTERM.
 */
import { type JsMsg, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { busNames, ensureStreamAndConsumer } from '../../src/bus/jetstream.js';
import { createGraphClient } from '../../src/graph/client.js';
import { staticToken } from '../../src/graph/tokens.js';

const env = (name: string, fallback?: string): string => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) {
    process.stderr.write(`naive: ${name} is required\n`);
    process.exit(2);
  }
  return value;
};

const answerTimeoutMs = Number(env('ANSWER_TIMEOUT_MS', '15000'));
const prefix = env('SUBJECT_PREFIX');
const names = busNames(prefix, env('NOTIFICATIONS_SUBJECT', `${prefix}.graph.notifications`));
const nc = await connect({ servers: env('NATS_URL').split(','), name: 'callgate-naive' });
const jsm = await jetstreamManager(nc);
await ensureStreamAndConsumer(jsm, names, { ackWaitMs: answerTimeoutMs + 30_000 });
const graph = createGraphClient({
  baseUrl: env('GRAPH_BASE_URL'),
  apiVersion: 'v1.0',
  tokens: staticToken('bench-token'),
});
const decoder = new TextDecoder();

interface Command {
  type?: unknown;
  callId?: unknown;
  reason?: unknown;
}

function handle(msg: JsMsg): void {
  let command: Command;
  try {
    command = JSON.parse(decoder.decode(msg.data)) as Command;
  } catch {
    msg.ack();
    return;
  }
  if (command.type !== 'call.reject' || typeof command.callId !== 'string') {
    msg.ack();
    return;
  }
  const reason = String(command.reason).toLowerCase();
  graph
    .reject(
      {
        callId: command.callId,
        reason: reason === 'busy' || reason === 'forbidden' ? reason : 'none',
        callbackUri: null,
        attempt: 1,
        deadline: Date.now() + answerTimeoutMs,
        remainingMs: answerTimeoutMs,
      },
      new AbortController().signal,
    )
    .then(
      (outcome) => {
        // One lifecycle record per decided call, as a service would publish.
        nc.publish(
          `${prefix}.lifecycle.${command.callId}`,
          JSON.stringify({
            callId: command.callId,
            state: 'rejected',
            status: outcome.status,
            at: new Date().toISOString(),
          }),
        );
        msg.ack();
      },
      () => msg.nak(1_000),
    );
}

const consumer = await jetstream(nc).consumers.get(names.stream, names.consumer);
const messages = await consumer.consume({ max_messages: 1_000, callback: handle });
process.stdout.write('ready\n');

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await messages.close();
  await graph.close();
  await nc.drain();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
