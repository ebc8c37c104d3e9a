import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { goneFromThisPlace, memberId, placeOfThisProcess } from '../../src/app/replicas.js';

describe('members of this place', () => {
  it('name where the process runs, its process id and a random part', () => {
    const place = placeOfThisProcess();
    expect(memberId(place, 4242)).toMatch(new RegExp(`^${place}-4242-[a-z0-9]+$`));
    expect(memberId(place)).not.toBe(memberId(place));
  });

  it('count a member of this place whose process has exited as gone', () => {
    const place = placeOfThisProcess();
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(exited).toBeGreaterThan(0);
    expect(goneFromThisPlace(memberId(place, exited), place)).toBe(true);
  });

  it('leave a running process, another place and an unreadable id to their heartbeats', () => {
    const place = placeOfThisProcess();
    expect(goneFromThisPlace(memberId(place, process.pid), place)).toBe(false);
    expect(goneFromThisPlace(memberId('elsewhere-4026531836', 999_999), place)).toBe(false);
    expect(goneFromThisPlace(`${place}-notapid-abc`, place, () => false)).toBe(false);
    // Where the process-id namespace cannot be read, no process counts as gone.
    expect(goneFromThisPlace('host-x-123-abc', 'host-x', () => false)).toBe(false);
  });
});
