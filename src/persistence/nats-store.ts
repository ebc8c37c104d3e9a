import { JetStreamApiCodes, JetStreamApiError, StorageType } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { createCasWriter } from './cas-writer.js';
import { decodeCall, encodeCall, isFinalStored } from './codec.js';
import { KeyQueue } from './key-queue.js';
import type { CallSource, Loaded, SnapshotStore } from './store.js';

/** A write not acknowledged within this time fails. */
const WRITE_TIMEOUT_MS = 5_000;

/** The key of the publication mark: a dot, so no call id can be it. */
const PUBLISHED_MARK = 'mark.published';

export interface NatsStoreOptions {
  readonly bucket: string;
  /** How long the bucket keeps a key after its last write (its TTL). */
  readonly retentionMs: number;
  /** Where a write reads the call, when it is sent. */
  readonly source: CallSource;
  /** Runs a send at the end of this turn of the event loop, with the host's other sends. */
  readonly defer: (send: () => void) => void;
  /**
   * Put before each call id in the bucket's keys (a partition's `p<n>.`), so
   * that an instance loads only its own calls. Default none.
   */
  readonly keyPrefix?: string;
  /** Replicas of the bucket when it is made (`STREAM_REPLICAS`, default 1). */
  readonly replicas?: number;
  /**
   * Asked before every write: while it says no (this instance no longer
   * owns these calls, or cannot tell), writes fail and are retried.
   */
  readonly mayWrite?: () => boolean;
}

const NOT_OWNER = new Error('this instance does not own the call now');

/**
 * The snapshot store on a JetStream KV bucket (created if missing, file
 * storage, one value per key, TTL `retentionMs`). Reading uses `@nats-io/kv`;
 * writing goes through the per-key queue and the compare-and-set writer.
 *
 * @example
 * const store = await openSnapshotStore(nc, { bucket, retentionMs, source: runtime, defer: outbox.defer });
 * store.save(callId, { records, prompted: true, done: (error) => (error ? msg.nak() : msg.ack()) });
 */
export async function openSnapshotStore(
  nc: NatsConnection,
  options: NatsStoreOptions,
): Promise<SnapshotStore> {
  const create = () =>
    new Kvm(nc).create(options.bucket, {
      history: 1,
      ttl: options.retentionMs,
      storage: StorageType.File,
      replicas: options.replicas ?? 1,
    });
  const kv: KV = await create();
  const keyPrefix = options.keyPrefix ?? '';
  const mayWrite = options.mayWrite ?? (() => true);
  const writer = createCasWriter(nc, {
    subjectPrefix: `$KV.${options.bucket}.${keyPrefix}`,
    timeoutMs: WRITE_TIMEOUT_MS,
  });
  const queue = new KeyQueue(
    {
      write: (callId, expected, call, done) =>
        !mayWrite()
          ? done({ ok: false, error: NOT_OWNER, outcomeUnknown: false })
          : call === 'erase'
            ? writer.erase(callId, expected, done)
            : writer.write(callId, expected, encodeCall(call), done),
      revision: async (callId) => (await kv.get(keyPrefix + callId))?.revision,
      defer: options.defer,
      now: Date.now,
    },
    options.source,
  );

  return {
    async loadAll() {
      const found = new Map<string, Loaded>();
      // One ordered consumer over the bucket (it keeps one value per key)
      // rather than a request per key.
      for await (const entry of await kv.history({ key: `${keyPrefix}>` })) {
        const callId = entry.key.slice(keyPrefix.length);
        // Without a prefix, a key with a dot belongs to a partition (call ids have none).
        if (callId.includes('.')) continue;
        if (entry.operation !== 'PUT') {
          found.delete(callId);
          continue;
        }
        const loaded = decodeCall(entry.value);
        found.set(callId, loaded);
        // Only a live call is written again; a value that cannot be read is left alone.
        if (loaded.ok && !isFinalStored(loaded.call))
          queue.known(callId, entry.revision, loaded.call.records);
      }
      return found;
    },
    oldestUnpublished: () => queue.oldestUnpublished(),
    async markPublished(at) {
      if (!mayWrite()) throw NOT_OWNER;
      await kv.put(`${keyPrefix}${PUBLISHED_MARK}`, JSON.stringify({ at }));
    },
    async publishedMark() {
      const entry = await kv.get(`${keyPrefix}${PUBLISHED_MARK}`);
      const at = entry?.operation === 'PUT' ? (entry.json<{ at?: unknown }>().at ?? 0) : 0;
      return typeof at === 'number' ? at : 0;
    },
    async lookup(callId) {
      const entry = await kv.get(keyPrefix + callId);
      return entry?.operation === 'PUT' ? decodeCall(entry.value) : undefined;
    },
    save: (callId, request) => queue.save(callId, request),
    lastRecords: (callId) => queue.lastRecords(callId),
    forget: (callId, done) => queue.forget(callId, done),
    whenStored: (callId, done) => queue.whenStored(callId, done),
    async ensure() {
      try {
        await kv.status();
        return false;
      } catch (error) {
        if (
          !(error instanceof JetStreamApiError) ||
          error.code !== JetStreamApiCodes.StreamNotFound
        ) {
          throw error;
        }
        await create();
        // The revisions this instance knew are gone with the bucket.
        queue.revisionsUnknown();
        return true;
      }
    },
    settled: () => queue.settled(),
    close() {
      queue.close();
      writer.close();
    },
  };
}
