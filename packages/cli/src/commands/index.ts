import type { Command } from '../command.js';
import { doctor } from './doctor.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { prune } from './prune.js';
import { runs } from './runs.js';
import { show } from './show.js';
import { stats } from './stats.js';
import { waiting } from './waiting.js';

/** Every command, in the order `cairn --help` lists them. */
export const COMMANDS: readonly Command[] = [
  runs,
  show,
  waiting,
  stats,
  doctor,
  prune,
  exportCommand,
  importCommand,
];
