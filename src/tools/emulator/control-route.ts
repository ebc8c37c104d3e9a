import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseFaultRule } from './faults.js';
import { readBody, send } from './http.js';
import { type EmulatorState, release, reset, stats } from './state.js';

export const CONTROL_PREFIX = '/_emulator/';

const RELEASE = /^release(?:\/([^/]+))?$/;

/**
 * The control API, so that a test driving a child process (or a demo) can
 * steer the emulator:
 *
 * | route | does |
 * |---|---|
 * | `POST /_emulator/faults` | add a fault rule `{callId?, rate?, times?, fault}` (201) |
 * | `DELETE /_emulator/faults` | drop every fault rule (204) |
 * | `GET /_emulator/requests` | every reject received, oldest first |
 * | `GET /_emulator/stats` | counts by status, accepted per call, tokens issued |
 * | `POST /_emulator/release/{callId}` | answer the held requests of one call (`/release`: all) |
 * | `POST /_emulator/reset` | forget everything (204) |
 *
 * The call routes (`/_emulator/calls…`, `/_emulator/notifications`) are in
 * `calls-route.ts`.
 *
 * Bad bodies get 400 `{"error": {"code": "invalidRequest", "message": "fault.kind: …"}}`.
 */
export async function handleControl(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  state: EmulatorState,
  hooks: { readonly onReset?: () => void } = {},
): Promise<void> {
  const route = path.slice(CONTROL_PREFIX.length);
  const method = req.method ?? 'GET';
  const releaseMatch = RELEASE.exec(route);

  if (route === 'faults' && method === 'POST') {
    const body = parseJson(await readBody(req));
    if (body === undefined) return invalid(res, 'the body must be a JSON object');
    const rule = parseFaultRule(body);
    if (!rule.ok) return invalid(res, rule.error);
    state.faults.add(rule.value);
    return send(res, 201, { added: rule.value });
  }
  if (route === 'faults' && method === 'DELETE') {
    state.faults.clear();
    return send(res, 204);
  }
  if (route === 'requests' && method === 'GET') return send(res, 200, state.records);
  if (route === 'stats' && method === 'GET') return send(res, 200, stats(state));
  if (route === 'reset' && method === 'POST') {
    reset(state);
    hooks.onReset?.();
    return send(res, 204);
  }
  if (releaseMatch && method === 'POST') {
    const callId = releaseMatch[1] === undefined ? undefined : decodeURIComponent(releaseMatch[1]);
    return send(res, 200, { released: release(state, callId) });
  }
  send(res, 404, {
    error: { code: 'notFound', message: `no control route ${method} ${CONTROL_PREFIX}${route}` },
  });
}

function invalid(res: ServerResponse, message: string): void {
  send(res, 400, { error: { code: 'invalidRequest', message } });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
