import type { LifecycleRecord } from '../../src/contract/records.js';

/** One call's records as a reject goes through: ringing at T0, rejecting 100 ms on, rejected 250 ms after that. */
export const T0 = Date.parse('2026-01-01T10:00:00.000Z');
export const at = (ms: number) => new Date(T0 + ms).toISOString();
export const ID = '2f1a1100-726e-4c1e-b6f2-a1b2c3d4e5f6';

export const ringing: LifecycleRecord = { callId: ID, state: 'ringing', previous: null, at: at(0) };
export const rejecting: LifecycleRecord = {
  callId: ID,
  state: 'rejecting',
  previous: 'ringing',
  at: at(100),
  reason: 'busy',
  attempts: 1,
};
export const rejected: LifecycleRecord = {
  ...rejecting,
  state: 'rejected',
  previous: 'rejecting',
  at: at(350),
};
