/** Tests start their own `nats-server` (never a shared one) with the project's own starter. */
export {
  freePort,
  type NatsServerProcess as NatsServer,
  startNatsServer,
} from '../../src/tools/nats-server.js';
