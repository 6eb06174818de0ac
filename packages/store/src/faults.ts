/**
 * Named fault-injection points at Cairn's checkpoint boundaries. Tests arm a point to throw
 * or to kill the process there; unarmed (always, in production) a point costs one boolean
 * check.
 *
 * In a child process, arm points with the environment variable `CAIRN_FAULTS`, a
 * comma-separated list of `point=action[@n]`: `action` is `throw` or `kill`, and `@n` fires
 * on the n-th hit (default the first), e.g. `CAIRN_FAULTS=step.after-run=kill@3`.
 */
export const FAULT_POINTS = [
  /** A step attempt is about to call the step function. */
  'step.before-run',
  /** A step function returned or threw; its outcome is not committed yet. */
  'step.after-run',
  /** A step's outcome has been committed. */
  'step.after-commit',
  /** Group commit is about to write a batch (throwing makes the batch fail). */
  'commit.before-write',
  /** A batch was written; the checkpoints in it are not acknowledged yet. */
  'commit.after-write',
  /** The store's log is about to append a batch (throwing makes the batch fail, unwritten). */
  'log.append',
  /** The store's log is about to sync what was appended (throwing makes the sync fail). */
  'log.sync',
  /** The store's log is about to write zeros ahead of its records (throwing skips them). */
  'log.fill',
  /** A sync of zeros the store's log wrote ahead of its records ended (throwing makes it fail). */
  'log.fill-sync',
  /** A migration committed one of its batches. */
  'migration.batch',
  /** A resume was validated; its checkpoint is not written yet. */
  'resume.before-commit',
  /** A pause was decided; its checkpoint is not written yet. */
  'pause.before-commit',
  /** A log line is about to be written (telemetry). */
  'telemetry.write',
] as const;

export type FaultPoint = (typeof FAULT_POINTS)[number];

/** What an armed point does: throw, kill the process (SIGKILL), or call a function. */
export type FaultAction = 'throw' | 'kill' | ((point: FaultPoint, detail: unknown) => void);

interface Armed {
  readonly action: FaultAction;
  /** Hits to let pass before firing. */
  skip: number;
  /** Times to fire; Infinity for every hit. */
  times: number;
  /** An error to throw instead of the default one. */
  readonly error: (() => Error) | undefined;
}

/** The error an armed `throw` point raises. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
  readonly point: FaultPoint;

  constructor(point: FaultPoint) {
    super(`Fault injected at ${point}`);
    this.point = point;
  }
}

const armed = new Map<FaultPoint, Armed>();
let any = false;
const hits = new Map<FaultPoint, number>();

export interface ArmOptions {
  /** Fire on the n-th hit (1 = the first). @default 1 */
  readonly nth?: number;
  /** Fire this many times (then disarm). @default Infinity */
  readonly times?: number;
  /** The error to throw (for `throw`), e.g. one that looks like a full disk. */
  readonly error?: () => Error;
}

export const faults = {
  /** Arms `point`. */
  arm(point: FaultPoint, action: FaultAction, options: ArmOptions = {}): void {
    if (!(FAULT_POINTS as readonly string[]).includes(point)) {
      throw new TypeError(`Unknown fault point "${point}"`);
    }
    armed.set(point, {
      action,
      skip: Math.max(0, (options.nth ?? 1) - 1),
      times: options.times ?? Infinity,
      error: options.error,
    });
    any = true;
  },

  /** Disarms one point, or all of them. */
  disarm(point?: FaultPoint): void {
    if (point === undefined) armed.clear();
    else armed.delete(point);
    any = armed.size > 0;
  },

  /** How many times `point` was reached while any point was armed (for tests). */
  hits(point: FaultPoint): number {
    return hits.get(point) ?? 0;
  },

  resetHits(): void {
    hits.clear();
  },

  /** Marks a point in the code. Free unless something is armed. */
  hit(point: FaultPoint, detail?: unknown): void {
    if (!any) return;
    hits.set(point, (hits.get(point) ?? 0) + 1);
    const entry = armed.get(point);
    if (!entry) return;
    if (entry.skip > 0) {
      entry.skip--;
      return;
    }
    if (entry.times <= 0) return;
    entry.times--;
    if (entry.action === 'kill') {
      process.kill(process.pid, 'SIGKILL');
      return;
    }
    if (entry.action === 'throw') throw entry.error ? entry.error() : new InjectedFault(point);
    entry.action(point, detail);
  },
};

/** Arms points named in `CAIRN_FAULTS` (see above). */
function armFromEnvironment(spec: string | undefined): void {
  if (!spec) return;
  for (const part of spec.split(',')) {
    const m = /^\s*([a-z.-]+)=(throw|kill)(?:@(\d+))?\s*$/.exec(part);
    if (!m) throw new TypeError(`CAIRN_FAULTS: cannot read "${part}"`);
    faults.arm(m[1] as FaultPoint, m[2] as 'throw' | 'kill', {
      nth: m[3] === undefined ? 1 : Number(m[3]),
    });
  }
}

armFromEnvironment(process.env.CAIRN_FAULTS);
