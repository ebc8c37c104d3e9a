import type { IncomingMessage } from 'node:http';

export type BodyRead =
  | { readonly kind: 'ok'; readonly body: Uint8Array }
  /** More than `maxBytes` arrived: reading stopped and what was read is dropped. */
  | { readonly kind: 'too-large' }
  /** The client went away before the end of the body, or sent it too slowly. */
  | { readonly kind: 'aborted' };

/**
 * Read a request body of at most `maxBytes`, whole within `timeoutMs`. On
 * the first byte too many it stops listening and pauses the request, so the
 * rest is never buffered; answer with `Connection: close` and Node closes
 * the socket after the answer. A body still arriving at the time-out counts
 * as abandoned.
 *
 * @example
 * const read = await readBody(req, 1024 * 1024, 10_000);
 * if (read.kind === 'too-large') res.writeHead(413, { connection: 'close' }).end();
 */
export function readBody(
  req: IncomingMessage,
  maxBytes: number,
  timeoutMs = 10_000,
): Promise<BodyRead> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      chunks.length = 0;
      settle({ kind: 'aborted' });
    }, timeoutMs);
    const settle = (result: BodyRead) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      resolve(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        chunks.length = 0;
        req.pause();
        settle({ kind: 'too-large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => settle({ kind: 'ok', body: Buffer.concat(chunks, size) });
    const onGone = () => settle({ kind: 'aborted' });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onGone);
    req.on('close', onGone);
  });
}
