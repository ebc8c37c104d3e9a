import type { IncomingMessage, ServerResponse } from 'node:http';
import { CONTROL_PREFIX } from './control-route.js';
import { readBody, send } from './http.js';
import {
  CallStateError,
  type NotificationKeys,
  type Notifier,
  type PlaceCallOptions,
} from './notifier.js';

const CALL_ACTION = /^calls\/([^/]+)\/(answer|hangup)$/;

/**
 * The control routes that make the emulator play Graph's side of a call:
 *
 * | route | does |
 * |---|---|
 * | `POST /_emulator/calls` | place a call `{callbackUrl, appId, callId?, tenantId?, source?, targets?, …}`: POST the signed incoming-call batch; 201 `{callId, status, notification}` (`status`: the webhook's answer) |
 * | `GET /_emulator/calls` | every placed call with its state |
 * | `POST /_emulator/calls/{id}/answer` | `updated`, state `established` (200 with the notification) |
 * | `POST /_emulator/calls/{id}/hangup` | `deleted`, state `terminated`, `resultInfo` (optional body `{code?, subcode?, message?}`) |
 * | `GET /_emulator/notifications` | every notification sent, with the webhook's answer |
 *
 * Returns false when the path is none of these (the caller goes on to `handleControl`).
 * Bad bodies get 400 naming the field; an unknown call 404; a call in the wrong state 409.
 */
export async function handleCallsControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  notifier: Notifier,
): Promise<boolean> {
  const route = path.slice(CONTROL_PREFIX.length);
  const method = req.method ?? 'GET';
  const action = CALL_ACTION.exec(route);
  try {
    if (route === 'calls' && method === 'POST') {
      const body = parseJson(await readBody(req));
      if (!isObject(body)) return invalid(res, 'the body must be a JSON object');
      send(res, 201, await notifier.placeCall(body as PlaceCallOptions));
      return true;
    }
    if (route === 'calls' && method === 'GET') {
      send(res, 200, notifier.calls());
      return true;
    }
    if (route === 'notifications' && method === 'GET') {
      send(res, 200, notifier.notifications());
      return true;
    }
    if (action?.[1] && method === 'POST') {
      const callId = decodeURIComponent(action[1]);
      if (action[2] === 'answer') {
        send(res, 200, await notifier.answer(callId));
        return true;
      }
      const text = await readBody(req);
      const body = text.trim() === '' ? {} : parseJson(text);
      if (!isObject(body)) return invalid(res, 'the body must be a JSON object');
      send(res, 200, await notifier.hangUp(callId, body));
      return true;
    }
  } catch (error) {
    if (error instanceof TypeError) return invalid(res, error.message);
    if (error instanceof CallStateError) {
      send(res, error.status, {
        error: { code: error.status === 404 ? 'notFound' : 'conflict', message: error.message },
      });
      return true;
    }
    throw error;
  }
  return false;
}

/** `GET /.well-known/openid-configuration`: where the notification signing keys are. */
export function handleNotificationOpenId(res: ServerResponse, origin: string, issuer: string) {
  send(res, 200, {
    issuer,
    jwks_uri: `${origin}/keys`,
    id_token_signing_alg_values_supported: ['RS256'],
  });
}

/** `GET /keys`: the JWKS with the emulator's one signing key. */
export function handleNotificationKeys(res: ServerResponse, keys: NotificationKeys) {
  send(res, 200, { keys: [keys.jwk] });
}

function invalid(res: ServerResponse, message: string): true {
  send(res, 400, { error: { code: 'invalidRequest', message } });
  return true;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
