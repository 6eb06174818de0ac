import { describe, expect, it } from 'vitest';
import { planRunScan } from '../src/run-listing.js';
import type { RunFilter } from '../src/store-types.js';

/**
 * Which index a listing scans: the most selective one the filter names, never every run when
 * a filter is given, bounded by the time range.
 */
describe('planRunScan', () => {
  const cases: [RunFilter, string, boolean][] = [
    [{}, 'idx-all', true],
    [
      { namespace: 'acme', status: 'paused', workflow: 'wf', tags: ['a'] },
      'idx-ns-status/acme/paused',
      false,
    ],
    [{ namespace: 'acme', status: 'paused' }, 'idx-ns-status/acme/paused', true],
    [{ status: 'failed', workflow: 'wf' }, 'idx-status/failed', false],
    [{ status: 'failed' }, 'idx-status/failed', true],
    [{ workflow: 'wf', namespace: 'acme' }, 'idx-workflow/wf', false],
    [{ workflow: 'wf', since: 5 }, 'idx-workflow/wf', true],
    [{ tags: ['a', 'b'] }, 'idx-tag/a', false],
    [{ tags: ['a'], namespace: 'acme' }, 'idx-tag/a', false],
    [{ tags: ['a'] }, 'idx-tag/a', true],
    [{ namespace: 'acme', until: 9 }, 'idx-ns/acme', true],
  ];
  for (const [filter, index, exact] of cases) {
    it(`${JSON.stringify(filter)} scans ${index}`, () => {
      const scan = planRunScan(filter);
      expect(scan.index.replaceAll('\u0000', '/')).toBe(index);
      expect(scan.exact).toBe(exact);
      expect(scan.gte.startsWith(scan.base)).toBe(true);
    });
  }

  it('the time range bounds the scan on the padded creation time', () => {
    const scan = planRunScan({ status: 'completed', since: 1000.5, until: 2000 });
    expect(scan.gte).toBe(`idx-status\u0000completed\u0000${'1001'.padStart(15, '0')}`);
    expect(scan.lt).toBe(`idx-status\u0000completed\u0000${'2000'.padStart(15, '0')}`);
    const open = planRunScan({ status: 'completed' });
    expect(open.gte).toBe('idx-status\u0000completed\u0000');
    expect(open.lt).toBe('idx-status\u0000completed\u0001');
    // Beyond what 15 digits hold: no upper bound; negative: from the start.
    expect(planRunScan({ until: 8e15 }).lt).toBe('idx-all\u0001');
    expect(planRunScan({ since: -5 }).gte).toBe(`idx-all\u0000${'0'.repeat(15)}`);
  });
});
