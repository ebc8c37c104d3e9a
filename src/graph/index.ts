/** Graph's reject API over HTTP: the client, its token sources and its error. */
export {
  createGraphClient,
  type GraphClient,
  type GraphClientOptions,
  type GraphLog,
} from './client.js';
export { GraphRequestError, parseGraphErrorBody, parseRetryAfter } from './errors.js';
export { type Outcome, outcomeOf } from './outcome.js';
export {
  type ClientCredentialsOptions,
  clientCredentials,
  GRAPH_SCOPE,
  staticToken,
  type TokenLog,
  type TokenSource,
} from './tokens.js';
