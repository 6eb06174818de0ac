/**
 * A durable timer's effects settle before time moves on: `ManualClock.advance()` waits for the
 * engine's reaction to each timer it fires (a sleep that follows a wait's timeout is timed from
 * the moment the wait fell due), and the timer service arms its next timer from a listing that
 * has the reactions in it, never from one a later fire has overtaken.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MemoryStore, type Timer } from '@cairn/store';
import { ManualClock, workflow, type Clock } from '../src/index.js';
import { deferred, openForTest, settle, until } from './support.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * A memory store whose next read of timers (`'due'`: the timers due now; `'listing'`: the
 * next ones, to arm for) can be held, as a slow disk holds it: `read()` lets it read the
 * store (and resolves once it has), `answer()` lets it return what it read.
 */
class SlowTimersStore extends MemoryStore {
  #hold: {
    kind: 'due' | 'listing';
    reached(): void;
    read: Promise<void>;
    done(): void;
    answer: Promise<void>;
  } | null = null;

  hold(kind: 'due' | 'listing') {
    const [reached, read, done, answer] = [deferred(), deferred(), deferred(), deferred()];
    this.#hold = {
      kind,
      reached: () => reached.resolve(),
      read: read.promise,
      done: () => done.resolve(),
      answer: answer.promise,
    };
    return {
      reached: reached.promise,
      read: () => {
        read.resolve();
        return done.promise;
      },
      answer: () => answer.resolve(),
    };
  }

  override async dueTimers(at: number, limit?: number): Promise<Timer[]> {
    const hold = this.#hold;
    if (hold === null || hold.kind !== (at === Number.MAX_SAFE_INTEGER ? 'listing' : 'due')) {
      return super.dueTimers(at, limit);
    }
    this.#hold = null;
    hold.reached();
    await hold.read;
    const timers = await super.dueTimers(at, limit);
    hold.done();
    await hold.answer;
    return timers;
  }
}

const approveThenCoolOff = workflow('approve-then-cool-off', {
  input: z.object({}),
  async run(ctx) {
    const approved = await ctx.waitForInput('approval', {
      schema: z.boolean(),
      timeout: '48h',
      onTimeout: { default: false },
    });
    await ctx.sleep('cool-off', '7d');
    return approved;
  },
});

const napper = workflow('napper', {
  input: z.object({ ms: z.number() }),
  run: (ctx, input) => ctx.sleep('nap', input.ms),
});

describe('ManualClock.advance()', () => {
  it('runs a sleep that follows a timed-out wait in the next advance, however slow the store', async () => {
    const clock = new ManualClock();
    const store = new SlowTimersStore();
    const { engine } = await openForTest({ workflows: [approveThenCoolOff], clock, store });
    const start = clock.now();
    const handle = await engine.start(approveThenCoolOff, {});
    await until(async () => (await handle.status()) === 'paused', 'the run to wait');

    const read = store.hold('due');
    let returned = false;
    const first = clock.advance(48 * HOUR).then(() => (returned = true));
    await read.reached;
    // The engine is still reading the timers due: advance() has not returned.
    for (let i = 0; i < 3; i++) await settle();
    expect(returned).toBe(false);
    void read.read();
    read.answer();
    await first;
    expect(await store.getTask(handle.id, 'cool-off')).toMatchObject({
      status: 'sleeping',
      wakeAt: start + 48 * HOUR + 7 * DAY,
    });

    await clock.advance(7 * DAY);
    expect(await handle.status()).toBe('completed');
    expect(await handle.result()).toBe(false);
    expect(clock.pending).toBe(0);
  });

  it('fires a timer armed at its target while it lets effects settle there', async () => {
    const clock = new ManualClock(0);
    const fired: number[] = [];
    // Something that reacts to the clock late: it arms a timer once time has reached 10.
    const lateArm = (async () => {
      while (clock.now() < 10) await new Promise<void>((resolve) => setImmediate(resolve));
      clock.setTimeout(() => fired.push(clock.now()), 0);
    })();
    await clock.advance(10);
    await lateArm;
    expect(fired).toEqual([10]);
    expect(clock.pending).toBe(0);
  });
});

describe('the timer service, on a clock that does not wait for its timers', () => {
  it('does not arm from a listing that a later fire overtook', async () => {
    // As the system clock does: a timer's callback is called, and its promise dropped.
    const manual = new ManualClock();
    const clock: Clock = {
      now: () => manual.now(),
      setTimeout: (fn, ms) => manual.setTimeout(() => void fn(), ms),
      clearTimeout: (handle) => manual.clearTimeout(handle),
    };
    const store = new SlowTimersStore();
    const { engine } = await openForTest({ workflows: [napper], clock, store });
    const first = await engine.start(napper, { ms: HOUR });
    await until(() => manual.pending === 1, 'the first nap to be armed');

    // The first nap ends; the service then lists the timers left to arm for the next one.
    const listing = store.hold('listing');
    await manual.advance(HOUR);
    await listing.reached;
    await until(async () => (await first.status()) === 'completed', 'the first run to end');
    // A second nap is armed meanwhile, and read into that listing.
    const second = await engine.start(napper, { ms: 1000 });
    await until(() => manual.pending === 1, 'the second nap to be armed');
    await listing.read();
    // It falls due and is handled before the listing comes back.
    await manual.advance(1000);
    await until(async () => (await second.status()) === 'completed', 'the second run to end');
    listing.answer();
    for (let i = 0; i < 3; i++) await settle();
    // Nothing is left to wake up for.
    expect(manual.pending).toBe(0);
  });
});
