import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type MarkStore, PublicationMark } from '../../src/service/publication-mark.js';

const log = pino({ level: 'silent' });

/** A store that remembers the marks, and what happened in which order. */
function recording(pending: () => number | undefined) {
  const steps: string[] = [];
  const marks: number[] = [];
  const store: MarkStore = {
    oldestUnpublished: pending,
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
  it('flushes the connection, then marks a millisecond before now', async () => {
    const { store, flush, steps, marks } = recording(() => undefined);
    const mark = new PublicationMark(flush, store, log);
    const before = Date.now();
    mark.published();
    await until(() => marks.length === 1);
    expect(steps).toEqual(['flush', 'mark']);
    expect(marks[0]).toBeGreaterThanOrEqual(before - 1);
    expect(marks[0]).toBeLessThan(Date.now());
  });

  it('stays before the oldest value whose records may not be out yet', async () => {
    const writtenAt = Date.now() - 1_000;
    const { store, flush, marks } = recording(() => writtenAt);
    const mark = new PublicationMark(flush, store, log);
    mark.published();
    await until(() => marks.length === 1);
    expect(marks).toEqual([writtenAt - 1]);
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
      oldestUnpublished: () => undefined,
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
