import { describe, expect, it } from 'vitest';
import { mapPool } from './pool.js';

describe('acting a few runs at a time', () => {
  /** A call that resolves when the test says so. */
  function gate() {
    const open: (() => void)[] = [];
    let inFlight = 0;
    let most = 0;
    const started: number[] = [];
    const fn = (item: number) =>
      new Promise<number>((resolve) => {
        inFlight++;
        most = Math.max(most, inFlight);
        started.push(item);
        open.push(() => {
          inFlight--;
          resolve(item * 10);
        });
      });
    const release = async () => {
      open.splice(0).forEach((f) => f());
      // the pool starts the next items once the settled ones' awaits resume
      await new Promise((r) => setTimeout(r, 0));
    };
    return { fn, release, started, most: () => most };
  }

  it('keeps at most the given number in flight and answers in the items’ order', async () => {
    const g = gate();
    const items = Array.from({ length: 10 }, (_, i) => i);
    const done = mapPool(items, 4, g.fn);
    await new Promise((r) => setTimeout(r, 0));
    expect(g.started).toEqual([0, 1, 2, 3]);
    while (g.started.length < 10) await g.release();
    await g.release();
    expect(await done).toEqual(items.map((i) => i * 10));
    expect(g.most()).toBe(4);
  });

  it('starts none after its signal fires, and leaves those unanswered', async () => {
    const g = gate();
    const controller = new AbortController();
    const done = mapPool([0, 1, 2, 3, 4, 5], 2, g.fn, controller.signal);
    await new Promise((r) => setTimeout(r, 0));
    controller.abort();
    await g.release();
    expect(await done).toEqual([0, 10, undefined, undefined, undefined, undefined]);
    expect(g.started).toEqual([0, 1]);
  });

  it('answers an empty list at once', async () => {
    expect(await mapPool([], 4, () => Promise.resolve(1))).toEqual([]);
  });

  it('starts none after a call throws, and rejects with its error', async () => {
    const started: number[] = [];
    const done = mapPool([0, 1, 2, 3, 4], 2, async (i) => {
      started.push(i);
      await new Promise((r) => setTimeout(r, 0));
      if (i === 0) throw new Error('key refused');
      return i;
    });
    await expect(done).rejects.toThrow('key refused');
    await new Promise((r) => setTimeout(r, 5));
    expect(started).toEqual([0, 1]);
  });

  it('rejects only once the calls in flight have ended, so each one done is counted', async () => {
    const g = gate();
    const ended: number[] = [];
    let settled = false;
    const done = mapPool([0, 1, 2, 3], 3, async (i) => {
      if (i === 0) {
        await new Promise((r) => setTimeout(r, 0));
        throw new Error('server away');
      }
      const v = await g.fn(i);
      ended.push(i);
      return v;
    });
    void done.catch(() => (settled = true));
    await new Promise((r) => setTimeout(r, 5));
    // 1 and 2 are still in flight: the pool has not answered
    expect(settled).toBe(false);
    await g.release();
    await expect(done).rejects.toThrow('server away');
    expect(ended).toEqual([1, 2]);
    expect(g.started).toEqual([1, 2]);
  });
});
