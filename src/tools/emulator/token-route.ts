import { randomBytes, randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, send } from './http.js';
import type { EmulatorState } from './state.js';

export interface TokenRouteOptions {
  readonly tokenTtlSeconds: number;
  /** When set, only this client id and secret get tokens (401 `invalid_client` otherwise). */
  readonly credentials?: { readonly clientId: string; readonly clientSecret: string } | undefined;
}

/**
 * `POST /{tenant}/oauth2/v2.0/token`: Microsoft Entra's client-credentials
 * grant (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow),
 * with its error shape `{error, error_description}`.
 */
export async function handleToken(
  req: IncomingMessage,
  res: ServerResponse,
  tenant: string,
  state: EmulatorState,
  options: TokenRouteOptions,
): Promise<void> {
  const form = new URLSearchParams(await readBody(req));
  const refuse = (status: number, error: string, description: string) =>
    send(res, status, {
      error,
      error_description: description,
      timestamp: new Date().toISOString(),
      trace_id: randomUUID(),
      correlation_id: form.get('client-request-id') ?? randomUUID(),
    });

  if (form.get('grant_type') !== 'client_credentials') {
    return refuse(
      400,
      'unsupported_grant_type',
      'AADSTS70003: only client_credentials is emulated.',
    );
  }
  for (const name of ['client_id', 'client_secret', 'scope']) {
    if (!form.get(name)) {
      return refuse(
        400,
        'invalid_request',
        `AADSTS900144: The request body must contain the following parameter: '${name}'.`,
      );
    }
  }
  if (!form.get('scope')?.endsWith('/.default')) {
    return refuse(
      400,
      'invalid_scope',
      'AADSTS1002012: the client credentials flow needs a /.default scope.',
    );
  }
  const expected = options.credentials;
  if (
    expected &&
    (form.get('client_id') !== expected.clientId ||
      form.get('client_secret') !== expected.clientSecret)
  ) {
    return refuse(401, 'invalid_client', 'AADSTS7000215: Invalid client secret provided.');
  }
  state.tokensIssued++;
  send(res, 200, {
    token_type: 'Bearer',
    expires_in: options.tokenTtlSeconds,
    ext_expires_in: options.tokenTtlSeconds,
    access_token: `emu.${tenant}.${state.tokensIssued}.${randomBytes(12).toString('hex')}`,
  });
}

/**
 * `GET /{tenant}/v2.0/.well-known/openid-configuration`, pointing at this
 * emulator's token endpoint. msal is given the same metadata in its config
 * (see `clientCredentials({ tokenEndpoint })`), because it only ever
 * discovers from an `https:` authority.
 */
export function handleOpenIdConfiguration(
  res: ServerResponse,
  tenant: string,
  origin: string,
): void {
  const base = `${origin}/${tenant}`;
  send(res, 200, {
    issuer: `${base}/v2.0`,
    token_endpoint: `${base}/oauth2/v2.0/token`,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    jwks_uri: `${base}/discovery/v2.0/keys`,
    token_endpoint_auth_methods_supported: ['client_secret_post'],
    grant_types_supported: ['client_credentials'],
  });
}
