import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CallBus, incoming, newCallId, reject } from '../support/call-bus.js';
import { type CallgateProcess, startCallgate } from '../support/callgate-process.js';
import { useE2e } from '../support/e2e.js';

/**
 * The live page in a real browser: Debian's Chromium driven by
 * playwright-core, `callgate serve` as a child process, a real nats-server,
 * and the Graph emulator holding the reject so `rejecting` is visible.
 */

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ARTIFACT = `${ROOT}test-artifacts/live-page.png`;
const DOCS_COPY = `${ROOT}docs/live-page.png`;
/** Long, so a ringing call stays in flight with its countdown on the screenshot. */
const WINDOW_MS = 60_000;
const PREFIX = 'livepage';

const e2e = useE2e({ scope: 'file' });

let bus: CallBus;
let service: CallgateProcess;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: the live page's browser test needs Debian's Chromium. Run \`bash scripts/ensure-test-tools.sh\` (as root it installs it), or \`sudo apt-get install chromium\`.`,
    );
  }
  bus = await e2e.openBus(PREFIX);
  service = await startCallgate(e2e.env(PREFIX, WINDOW_MS));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1100, height: 820 } });
});

afterAll(async () => {
  await browser?.close();
});

const countOf = (state: string) => page.locator(`#counts .count[data-state="${state}"] b`);
const inFlight = (callId: string) => page.locator(`#calls tr[data-call-id="${callId}"]`);
const recentRow = (callId: string, state: string) =>
  page.locator(`#recent tr[data-call-id="${callId}"][data-state="${state}"]:not([data-refused])`);

describe('the live page in Chromium', () => {
  it('loads from GET / with its stream live and empty counts', async () => {
    const response = await page.goto(service.httpUrl);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("default-src 'none'");
    await expect.poll(() => page.locator('#status').textContent()).toBe('live');
    await expect.poll(() => countOf('ringing').textContent()).toBe('0');
    await expect.poll(() => countOf('rejected').textContent()).toBe('0');
    expect(await page.locator('#calls tr.empty').count()).toBe(1);
  });

  it('shows a call ringing, then rejecting, then rejected, with counts, latency and a refusal', async () => {
    const callId = newCallId();
    const waiting = newCallId();
    e2e.graph.setFault({ callId, fault: { kind: 'slow', ms: 1_500 } });

    await bus.send(incoming(callId));
    await bus.send(incoming(waiting));
    const row = inFlight(callId);
    await row.waitFor();
    await expect.poll(() => row.getAttribute('data-state')).toBe('ringing');
    await expect.poll(() => countOf('ringing').textContent()).toBe('2');
    // Counting down from the deadline the server sent: seconds left, below the window.
    const left = Number.parseFloat((await row.locator('td.left').textContent()) ?? '');
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThanOrEqual(WINDOW_MS / 1000);

    await bus.send(reject(callId, 'busy'));
    await expect.poll(() => row.getAttribute('data-state')).toBe('rejecting');
    await expect.poll(() => countOf('rejecting').textContent()).toBe('1');

    await recentRow(callId, 'rejected').waitFor({ timeout: 10_000 });
    await expect.poll(() => row.count()).toBe(0);
    await expect.poll(() => countOf('rejected').textContent()).toBe('1');
    await expect.poll(() => countOf('rejecting').textContent()).toBe('0');
    await expect.poll(() => countOf('ringing').textContent()).toBe('1');
    expect(await inFlight(waiting).getAttribute('data-state')).toBe('ringing');
    const latency = (await page.locator('#latency').textContent()) ?? '';
    expect(latency).toMatch(/rejects 1/);
    expect(latency).toMatch(/last 1\.\d\d s/); // held 1.5 s by the emulator

    // A second reject for the rejected call is refused; the page lists it.
    await bus.send(reject(callId, 'busy'));
    await page
      .locator(`#recent tr[data-call-id="${callId}"][data-refused="call.reject"]`)
      .waitFor();

    await mkdir(`${ROOT}test-artifacts`, { recursive: true });
    await page.screenshot({ path: ARTIFACT, fullPage: true });
    // The README's copy changes only on request: `UPDATE_SCREENSHOT=1 npm test`.
    if (process.env.UPDATE_SCREENSHOT === '1') {
      await mkdir(`${ROOT}docs`, { recursive: true });
      await copyFile(ARTIFACT, DOCS_COPY);
    }
    expect(existsSync(ARTIFACT)).toBe(true);
  });
});
