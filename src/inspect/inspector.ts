import http from 'node:http';
import type { Socket } from 'node:net';
import { createWebSocketInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import type { AnyEventObject, InspectionEvent, MachineContext, Observer } from 'xstate';
import { createPiiSanitizer, piiHasher } from '../pii.js';

export interface CallInspectorOptions {
  /** The relay's HTTP + WebSocket port (`INSPECT_PORT`); not 0: the page names it. */
  readonly port: number;
  /** Where it listens (`INSPECT_HOST`, default `127.0.0.1`). */
  readonly host?: string;
  readonly log: { info(fields: object, message: string): void };
}

export interface CallInspector {
  /** For `createActor(…, { inspect })`: every event leaves sanitized. */
  readonly inspect: Observer<InspectionEvent>;
  /** The page a developer opens: Stately's inspector fed by this process. */
  readonly url: string;
  /** Close the relay, its connections and the process's own client. */
  stop(): Promise<void>;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Where this process reaches its own relay: a wildcard address means loopback. */
function reachableHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '[::]') return '127.0.0.1';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * Run `createInspectorServer` bound to `host`. 0.7 has no host option and
 * calls `listen(port)` (every interface) on a server it makes synchronously;
 * `http.createServer` is swapped only for that synchronous call so the server
 * listens on `host` instead, and is handed back to close it properly.
 */
function startRelay(port: number, host: string): { server: http.Server; stop: () => void } {
  const createServer = http.createServer;
  let server: http.Server | undefined;
  const bound = ((...args: Parameters<typeof http.createServer>) => {
    const made = createServer(...args);
    const listen = made.listen.bind(made) as (...a: unknown[]) => http.Server;
    made.listen = ((...a: unknown[]) => {
      const done = a.find((arg) => typeof arg === 'function');
      return listen(port, host, ...(done ? [done] : []));
    }) as typeof made.listen;
    server = made;
    return made;
  }) as typeof http.createServer;
  http.createServer = bound;
  let relay: { stop(): void };
  try {
    relay = createInspectorServer({ port, autoOpen: false });
  } finally {
    http.createServer = createServer;
  }
  if (!server) throw new Error('@statelyai/inspect did not create its server');
  return { server, stop: () => relay.stop() };
}

/**
 * Only the page the relay serves (or a client without an `Origin`, such as
 * this process) may connect: any other web page the developer has open could
 * otherwise read every call, or inject events.
 */
function guardOrigins(server: http.Server, port: number): void {
  const upgrades = server.listeners('upgrade') as ((...args: unknown[]) => void)[];
  server.removeAllListeners('upgrade');
  server.on('upgrade', (request: http.IncomingMessage, socket: Socket, head: Buffer) => {
    const origin = request.headers.origin;
    let allowed = origin === undefined;
    if (origin !== undefined) {
      try {
        const url = new URL(origin);
        allowed = LOOPBACK_NAMES.has(url.hostname) && url.port === String(port);
      } catch {
        allowed = false;
      }
    }
    if (!allowed) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    for (const listener of upgrades) listener.call(server, request, socket, head);
  });
}

/**
 * The Stately inspector for live calls (`INSPECT=1`): `@statelyai/inspect`'s
 * Node relay (a page embedding stately.ai/inspect, and a WebSocket that passes
 * events on to it) on `host:port`, and this process's client feeding it. Every
 * event is sanitized before it leaves the process.
 *
 * @example
 * const inspector = await createCallInspector({ port: 4242, log });
 * createCallRuntime({ …, inspect: inspector.inspect, keepAwake: true });
 */
export async function createCallInspector(options: CallInspectorOptions): Promise<CallInspector> {
  const { port, log } = options;
  const host = options.host ?? '127.0.0.1';
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new RangeError(`the inspector needs a fixed port (1-65535), got ${port}`);
  }
  const relay = startRelay(port, host);
  const sockets = new Set<Socket>();
  relay.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  guardOrigins(relay.server, port);
  await new Promise<void>((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    relay.server.once('error', failed);
    relay.server.once('listening', () => {
      relay.server.off('error', failed);
      resolve();
    });
  }).catch((error: unknown) => {
    relay.stop();
    throw error;
  });

  const sanitize = createPiiSanitizer(piiHasher()).anywhere;
  const reachable = reachableHost(host);
  const client = createWebSocketInspector({
    url: `ws://${reachable}:${port}`,
    sanitizeEvent: (event) => sanitize(event) as AnyEventObject,
    sanitizeContext: (context) => sanitize(context) as MachineContext,
    // Last pass over the whole event: inputs, outputs and children too.
    serialize: (event) => sanitize(event) as StatelyInspectionEvent,
  });
  const url = `http://${reachable === '127.0.0.1' ? 'localhost' : reachable}:${port}/`;
  log.info({ url }, 'Stately inspector: open this URL');

  let stopped: Promise<void> | undefined;
  return {
    inspect: client.inspect,
    url,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        client.stop();
        relay.server.once('close', () => resolve());
        relay.stop();
        for (const socket of sockets) socket.destroy();
      });
      return stopped;
    },
  };
}
