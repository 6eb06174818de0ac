import { expect } from 'vitest';
import type { ErrorCode } from '../errors.js';
import type { Run, Task } from '../records.js';
import type { Store } from '../store.js';
import { expectCairnError, expectTypeError } from './context.js';
import { makeLog, makeRun, makeSleep, makeTask, makeWait, withStatus } from './fixtures.js';
import { snapshot, type StoreSnapshot } from './snapshot.js';

/** What a seeded store holds, for cases that build on valid records. */
export interface Seed {
  /** A paused run with a step, a wait (with a timeout) and a sleep. */
  readonly run: Run;
  readonly task: Task;
  readonly wait: Task;
  /** A completed run. */
  readonly done: Run;
  /** A run id with inbox entries and logs but no run record. */
  readonly orphan: string;
}

/** Fills `store` with a little of everything. */
export async function seedStore(store: Store): Promise<Seed> {
  const base = makeRun({ namespace: 'acme' });
  const task = makeTask(base, { taskId: 'score' });
  const wait = makeWait(base, { taskId: 'approve' });
  const run = { ...withStatus(base, 'paused'), pausedTaskId: wait.taskId };
  const done = makeRun({ status: 'completed', output: { paid: true } });
  await store.createRun(base);
  await store.checkpoint({ runs: [run, done], tasks: [task, wait, makeSleep(base)] });
  await store.putInbox(run.id, 'later', { approved: true });
  await store.appendLogs([makeLog(run.id), makeLog(done.id, { level: 'warn' })]);
  await store.putInbox('orphan', 'approve', 1);
  await store.appendLogs([makeLog('orphan')]);
  await store.putMeta('owner', { team: 'ops' });
  return { run, task, wait, done, orphan: 'orphan' };
}

function read(store: Store): Promise<StoreSnapshot> {
  return snapshot(store, { runIds: ['orphan'], metaNames: ['owner', 'schemaVersion'] });
}

/** What a bad call must fail with: `TypeError` (code `INVALID_ARGUMENT`) or a `CairnError` code. */
export type Expected = 'TypeError' | ErrorCode;

/** A store whose methods take anything, to call them as JavaScript callers can. */
export type Loose = {
  [K in keyof Store]: Store[K] extends (...args: never[]) => infer R
    ? (...args: unknown[]) => R
    : Store[K];
};

export interface BadCall {
  readonly name: string;
  readonly expected: Expected;
  readonly call: (store: Loose, seed: Seed) => unknown;
}

/** Runs `call`, checks it fails as `expected`, and that nothing stored changed. */
export async function expectRefused(store: Store, seed: Seed, bad: BadCall): Promise<void> {
  const before = await read(store);
  const call = () => bad.call(store as unknown as Loose, seed);
  if (bad.expected === 'TypeError') await expectTypeError(call);
  else await expectCairnError(call, bad.expected);
  expect(await read(store)).toEqual(before);
}
