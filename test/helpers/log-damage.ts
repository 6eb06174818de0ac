import { appendFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';

/** The store's log in a LevelStore directory (the one name to change if the file is renamed). */
export const STORE_LOG_FILE = 'CAIRN-WAL';

export const DAMAGES = ['truncate', 'flip', 'zero', 'delete', 'append'] as const;
export type Damage = (typeof DAMAGES)[number];

/**
 * Damages the log file as `damage` says, at offsets drawn from `random` within the part of the
 * file that was written (up to its last byte that is not zero: a log may be filled with zeros
 * ahead of its records). Returns what was done, for messages.
 *   truncate  cut the file at an offset
 *   flip      flip 1 to 4 bits
 *   zero      zero 512 bytes from an offset
 *   delete    remove the file
 *   append    add 1 to 4096 random bytes at the end of the file
 */
export function damageLog(file: string, damage: Damage, random: () => number): string {
  const bytes = readFileSync(file);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  const at = (): number => Math.floor(random() * end);
  if (end === 0 && (damage === 'flip' || damage === 'zero' || damage === 'truncate')) {
    return `left alone: nothing was written (${bytes.length} bytes)`;
  }
  switch (damage) {
    case 'truncate': {
      const offset = at();
      truncateSync(file, offset);
      return `truncated at ${offset} of ${bytes.length} (written ${end})`;
    }
    case 'flip': {
      const flips = Array.from({ length: 1 + Math.floor(random() * 4) }, () => {
        const offset = at();
        const bit = Math.floor(random() * 8);
        bytes[offset]! ^= 1 << bit;
        return `${offset}.${bit}`;
      });
      writeFileSync(file, bytes);
      return `flipped bits ${flips.join(' ')} (written ${end})`;
    }
    case 'zero': {
      const offset = at();
      bytes.fill(0, offset, Math.min(bytes.length, offset + 512));
      writeFileSync(file, bytes);
      return `zeroed 512 bytes at ${offset} (written ${end})`;
    }
    case 'delete':
      rmSync(file);
      return `deleted (${bytes.length} bytes, written ${end})`;
    case 'append': {
      const garbage = Buffer.from(
        Array.from({ length: 1 + Math.floor(random() * 4096) }, () => Math.floor(random() * 256)),
      );
      appendFileSync(file, garbage);
      return `appended ${garbage.length} random bytes after ${bytes.length}`;
    }
  }
}
