import { expect } from 'vitest';

/** Poll `check` until its value passes `assert` (default: truthy), or fail after `timeout` ms. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  options: { timeout?: number; interval?: number } = {},
): Promise<T> {
  let last: T | undefined;
  await expect
    .poll(
      async () => {
        last = await check();
        return last;
      },
      { timeout: options.timeout ?? 10_000, interval: options.interval ?? 20 },
    )
    .toBeTruthy();
  return last as T;
}
