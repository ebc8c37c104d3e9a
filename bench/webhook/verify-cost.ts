import { createLocalJWKSet } from 'jose';
import {
  createNotificationKeys,
  NOTIFICATION_ISSUER,
  signNotificationToken,
} from '../../src/tools/emulator/notifier.js';
import { createNotificationVerifier, type KeySource } from '../../src/webhook/verify.js';

/**
 * The verifier alone, in this process: CPU per token verified in full
 * (signature, claims, tenant: `cachedTokens: 0`) and per token found in the
 * cache of verified tokens, for one RS256 token used again and again.
 */

const APP_ID = 'bench-verify-app';
const FULL = 3_000;
const CACHED = 30_000;

export async function verifyCost(): Promise<Record<string, string | number>> {
  const keys = await createNotificationKeys();
  const keySource: KeySource = {
    getKey: createLocalJWKSet({ keys: [keys.jwk] }),
    generation: () => 1,
  };
  const header = `Bearer ${await signNotificationToken(keys, { appId: APP_ID, ttlSeconds: 3600 })}`;
  const options = { keys: keySource, issuers: [NOTIFICATION_ISSUER], audience: APP_ID };
  const full = await cpuPerCall(
    createNotificationVerifier({ ...options, cachedTokens: 0 }),
    header,
    FULL,
  );
  const cached = await cpuPerCall(createNotificationVerifier(options), header, CACHED);
  return {
    'verifier alone (this build, in-process)': `one RS256 token, ${FULL} full / ${CACHED} cached verifications`,
    'CPU per full verification (µs)': Math.round(full),
    'CPU per cached token (µs)': Math.round(cached),
  };
}

/** CPU µs per call after a warm-up of a tenth as many; every call must accept. */
async function cpuPerCall(
  verify: (header: string) => Promise<{ ok: boolean }>,
  header: string,
  calls: number,
): Promise<number> {
  for (let i = 0; i < calls / 10; i++) await verify(header);
  const before = process.cpuUsage();
  for (let i = 0; i < calls; i++) {
    if (!(await verify(header)).ok) throw new Error('the bench token was refused');
  }
  const used = process.cpuUsage(before);
  return (used.user + used.system) / calls;
}
