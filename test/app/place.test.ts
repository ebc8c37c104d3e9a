import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  goneFromThisPlace,
  memberId,
  type ProcessTable,
  placeOfThisProcess,
  startOf,
} from '../../src/app/place.js';

const linux = process.platform === 'linux';
const PLACE = 'd42a4be76c7a.4026531836';
/** A process table where only the listed process ids run, each since the given start. */
const table = (running: Record<number, string>): ProcessTable => ({
  exists: (pid) => pid in running,
  startOf: (pid) => running[pid],
});

describe('member ids', () => {
  it('name the place, the process id, its start and a random part', () => {
    const id = memberId(PLACE, 4242, '1290548');
    expect(id).toMatch(/^[A-Za-z0-9_]+-d42a4be76c7a\.4026531836-4242-1290548-[a-z0-9]+$/);
    expect(memberId(PLACE, 4242, '1290548')).not.toBe(id);
  });

  it.runIf(linux)('read this machine: its place and this process start', () => {
    expect(placeOfThisProcess()).toMatch(/^[0-9a-f]{12}\.\d+$/);
    expect(startOf(process.pid)).toMatch(/^\d+$/);
  });
});

describe('a member of this place whose process ended', () => {
  it('is gone when its process id is free', () => {
    expect(goneFromThisPlace(memberId(PLACE, 777, '100'), PLACE, table({}))).toBe(true);
  });

  it('is gone when its process id runs a process started at another time', () => {
    expect(goneFromThisPlace(memberId(PLACE, 777, '100'), PLACE, table({ 777: '555' }))).toBe(true);
  });

  it.runIf(linux)('is gone for a real process that has exited', () => {
    const place = placeOfThisProcess();
    const exited = spawnSync(process.execPath, ['-e', '0']).pid;
    expect(exited).toBeGreaterThan(0);
    expect(goneFromThisPlace(memberId(place, exited, '1'), place)).toBe(true);
  });
});

describe('other members are left to their heartbeats', () => {
  it('a process that still runs, frozen or not', () => {
    expect(goneFromThisPlace(memberId(PLACE, 777, '100'), PLACE, table({ 777: '100' }))).toBe(
      false,
    );
  });

  it('a member of the same host name on another machine or boot, or in another namespace', () => {
    const elsewhere = memberId('0123456789ab.4026531836', 777, '100');
    expect(goneFromThisPlace(elsewhere, PLACE, table({}))).toBe(false);
    const otherNamespace = memberId('d42a4be76c7a.4026532999', 777, '100');
    expect(goneFromThisPlace(otherNamespace, PLACE, table({}))).toBe(false);
  });

  it('a member whose place or start is unknown, and any member where this place is unknown', () => {
    expect(goneFromThisPlace(memberId(undefined, 777, '100'), PLACE, table({}))).toBe(false);
    expect(goneFromThisPlace(memberId(PLACE, 777, undefined), PLACE, table({}))).toBe(false);
    expect(goneFromThisPlace(memberId(PLACE, 777, '100'), undefined, table({}))).toBe(false);
    expect(goneFromThisPlace('host-4242-abc123', PLACE, table({}))).toBe(false);
  });

  it.runIf(linux)('this very process, under another member id', () => {
    const place = placeOfThisProcess();
    expect(goneFromThisPlace(memberId(place), place)).toBe(false);
  });
});
