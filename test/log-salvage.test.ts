/** An engine opened on a store whose damaged log was salvaged says so. */
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, LevelStore } from '@cairn/core';
import type { SalvageReport } from '@cairn/store';
import { crashed, damageRecord, removeCrashed } from './helpers/damaged-log.js';

afterEach(() => removeCrashed());

describe('createEngine on a salvaged store', () => {
  it('emits a warning naming the salvage; without salvage it is refused with LOG_DAMAGED', async () => {
    const { path, run, records } = await crashed(4, 3);
    damageRecord(path, records, 2);
    await expect(
      createEngine({ store: new LevelStore({ path }), workflows: [], recover: false }),
    ).rejects.toMatchObject({ code: 'LOG_DAMAGED' });
    const warnings: { message: string; cause?: unknown }[] = [];
    const store = new LevelStore({ path, onLogDamage: 'salvage' });
    const engine = await createEngine({
      store,
      workflows: [],
      recover: false,
      on: { warning: (w) => warnings.push(w) },
    });
    try {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toContain('salvaged');
      expect((warnings[0]!.cause as SalvageReport).runs).toEqual([run.id]);
      expect((await engine.diagnose(run.id)).salvage?.runs).toEqual([run.id]);
    } finally {
      await engine.close();
      await store.close();
    }
  });
});
