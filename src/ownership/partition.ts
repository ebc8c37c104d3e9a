import { callIdHash } from '../contract/call-id.js';

/**
 * The partition of a call: FNV-1a (32 bits) of its canonical id's UTF-8
 * bytes, modulo the number of partitions. nats-server's subject mapping
 * `{{partition(n,1)}}` computes the same for the same token, so a server
 * mapping on `<prefix>.events.*` puts a call published under its canonical id
 * in the same partition (test/e2e/partitions.e2e.test.ts checks this against
 * a running server).
 */
export function partitionOf(callId: string, count: number): number {
  return callIdHash(callId) % count;
}
