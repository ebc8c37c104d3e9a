import { describe, expect, it } from 'vitest';
import { isTransient, whileTransient } from '../../src/bus/transient.js';

describe('transient JetStream errors at start-up', () => {
  it('are told from the ones for the operator', () => {
    expect(isTransient(new Error("no responders: '$JS.API.STREAM.INFO.x'"))).toBe(true);
    expect(isTransient(new Error('jetstream is not enabled'))).toBe(true);
    expect(isTransient(new Error('stream not found'))).toBe(true);
    expect(isTransient(new Error('insufficient storage resources available'))).toBe(false);
    expect(isTransient(new Error('replicas > 1 not supported in non-clustered mode'))).toBe(false);
  });

  it('are tried again until the attempt succeeds; others are thrown at once', async () => {
    let calls = 0;
    const value = await whileTransient(async () => {
      calls++;
      if (calls < 3) throw new Error('no responders');
      return 'made';
    }, 5_000);
    expect([value, calls]).toEqual(['made', 3]);

    let refused = 0;
    await expect(
      whileTransient(async () => {
        refused++;
        throw new Error('insufficient storage resources available');
      }),
    ).rejects.toThrow('insufficient storage');
    expect(refused).toBe(1);
  });

  it('give up with the last error once the time is up', async () => {
    await expect(
      whileTransient(async () => {
        throw new Error('no responders');
      }, 300),
    ).rejects.toThrow('no responders');
  });
});
