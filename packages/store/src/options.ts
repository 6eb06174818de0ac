/** Option objects: refusing names a call does not know, with the name it probably meant. */
import { CairnError } from './errors.js';

/**
 * The option names of an options type, checked at compile time: every name of `T` and no
 * other. `optionNames<StartOptions>()({ id: true, namespace: true, tags: true })`.
 */
export function optionNames<T>(): (names: {
  readonly [K in keyof Required<T>]: true;
}) => ReadonlySet<string> {
  return (names) => new Set(Object.keys(names));
}

/**
 * Refuses an option `options` has that is not in `known` (a misspelt `timeoutt` would
 * otherwise be ignored in silence): `INVALID_ARGUMENT` naming it, with the known name it is
 * closest to. An own `__proto__` key (from `JSON.parse`) is not an option and is passed over.
 */
export function checkOptionNames(name: string, options: object, known: ReadonlySet<string>): void {
  for (const key in options) {
    if (known.has(key) || !Object.hasOwn(options, key) || key === '__proto__') continue;
    const near = closest(key, known);
    throw new CairnError(
      'INVALID_ARGUMENT',
      `${name} has no option "${key}"${near === undefined ? '' : ` (did you mean "${near}"?)`}; it takes ${[...known].join(', ')}`,
      {
        details: {
          option: key,
          known: [...known],
          ...(near === undefined ? {} : { suggestion: near }),
        },
      },
    );
  }
}

/**
 * The candidate closest to `word` in edit distance, if one is close enough to be a slip of
 * the keyboard (at most a third of its length, and at least one, apart); ties go to the first.
 */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const limit = Math.max(1, Math.floor(Math.max(word.length, candidate.length) / 3));
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) =>
    Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}
