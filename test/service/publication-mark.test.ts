import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type MarkStore, PublicationMark } from '../../src/service/publication-mark.js';

const log = pino({ level: 'silent' });

/** A store that remembers the marks, and what happened in which order. */
function recording(pending: () => number | undefined) {
  const steps: string[] = [];
  const marks: number[] = [];
  const store: MarkStore = {
    oldestPendingWrite: pending,
    async markPublished(at) {
      steps.push('mark');
      marks.push(at);
    },
  };
  const flush = async () => {
    steps.push('flush');
  };
  return { store, flush, steps, marks };
}

const until = async (done: () => boolean) => {
  while (!done()) await new Promise((resolve) => setTimeout(resolve, 5));
};

describe('publication mark', () => {
  it('flushes the connection, then marks the time records went out by', async () => {
    const { store, flush, steps, marks } = recording(() => undefined);
    const mark = new PublicationMark(flush, store, log);
    const before = Date.now();
    mark.published();
    await until(() => marks.length === 1);
    expect(steps).toEqual(['flush', 'mark']);
    expect(marks[0]).toBeGreaterThanOrEqual(before);
    expect(marks[0]).toBeLessThanOrEqual(Date.now());
  });

  it('stays before the oldest write still waiting for its acknowledgement', async () => {
    const sentAt = Date.now() - 1_000;
    const { store, flush, marks } = recording(() => sentAt);
    const mark = new PublicationMark(flush, store, log);
    mark.published();
    await until(() => marks.length === 1);
    expect(marks).toEqual([sentAt - 1]);
  });

  it('folds publications made meanwhile into one more mark, and marks once more on stop', async () => {
    const { store, flush, marks } = recording(() => undefined);
    const mark = new PublicationMark(flush, store, log);
    for (let i = 0; i < 100; i++) mark.published();
    await until(() => marks.length === 1);
    for (let i = 0; i < 100; i++) mark.published();
    await until(() => marks.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(marks).toHaveLength(2);
    await mark.stop();
    expect(marks).toHaveLength(3);
    mark.published();
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(marks).toHaveLength(3);
  });

  it('survives a mark the bucket refuses', async () => {
    let refuse = true;
    const marks: number[] = [];
    const store: MarkStore = {
      oldestPendingWrite: () => undefined,
      async markPublished(at) {
        if (refuse) throw new Error('no responders');
        marks.push(at);
      },
    };
    const mark = new PublicationMark(async () => {}, store, log);
    mark.published();
    await new Promise((resolve) => setTimeout(resolve, 20));
    refuse = false;
    mark.published();
    await until(() => marks.length === 1);
    expect(marks).toHaveLength(1);
  });
});
