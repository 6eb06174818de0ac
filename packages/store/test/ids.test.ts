import { describe, expect, it } from 'vitest';
import { isUuid, uuidv7 } from '../src/index.js';

describe('uuidv7', () => {
  it('makes valid version-7 UUIDs with the RFC variant', () => {
    for (let i = 0; i < 2000; i++) {
      const id = uuidv7(1_700_000_000_000 + i);
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
  });

  it('carries the milliseconds in its first 48 bits', () => {
    const ms = 1_800_000_123_456;
    const id = uuidv7(ms);
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms);
  });

  it('sorts by creation, within a millisecond too, and never repeats', () => {
    const ids: string[] = [];
    const start = 1_900_000_000_000;
    // Many ids per millisecond (more than one pool of random bytes), then later milliseconds.
    for (let ms = 0; ms < 5; ms++) for (let i = 0; i < 700; i++) ids.push(uuidv7(start + ms));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('keeps order when the clock steps back', () => {
    const a = uuidv7(2_000_000_000_000);
    const b = uuidv7(1_000_000_000_000);
    expect(b > a).toBe(true);
  });
});
