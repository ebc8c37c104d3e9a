import type { Configuration } from '@azure/msal-node';
import { LogLevel } from '@azure/msal-node';
import type { ClientCredentialsOptions, TokenLog } from './tokens.js';

const PUBLIC_CLOUD = 'https://login.microsoftonline.com';

/**
 * msal-node's configuration for the client-credentials flow. With a
 * `tokenEndpoint`, the authority and cloud discovery metadata are supplied
 * here, so msal never contacts the authority: it only accepts `https:`
 * authorities, but posts to whatever `token_endpoint` the metadata names
 * (a loopback emulator in tests, an egress proxy in production). msal's own
 * log goes to `log.debug`, without personal data.
 *
 * @example
 * new ConfidentialClientApplication(msalConfiguration({ tenantId, clientId, clientSecret }, log));
 */
export function msalConfiguration(options: ClientCredentialsOptions, log: TokenLog): Configuration {
  const host = (options.authority ?? PUBLIC_CLOUD).replace(/\/+$/, '');
  const authority = `${host}/${options.tenantId}`;
  const auth: Configuration['auth'] = {
    clientId: options.clientId,
    clientSecret: options.clientSecret,
    authority,
  };
  if (options.tokenEndpoint !== undefined) {
    const name = new URL(host).host;
    // Metadata supplied in config: msal skips instance and OpenID discovery.
    auth.knownAuthorities = [name];
    auth.authorityMetadata = JSON.stringify({
      token_endpoint: options.tokenEndpoint,
      authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
      issuer: `${authority}/v2.0`,
      jwks_uri: `${authority}/discovery/v2.0/keys`,
    });
    auth.cloudDiscoveryMetadata = JSON.stringify({
      tenant_discovery_endpoint: `${authority}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: name, preferred_cache: name, aliases: [name] }],
    });
  }
  return {
    auth,
    system: {
      loggerOptions: {
        piiLoggingEnabled: false,
        logLevel: LogLevel.Info,
        loggerCallback: (level, message, containsPii) => {
          if (!containsPii) log.debug({ msalLevel: LogLevel[level] }, message);
        },
      },
    },
  };
}
