import type { Command } from '../command.js';
import { cancel } from './cancel.js';
import { doctor } from './doctor.js';
import { exportCommand } from './export.js';
import { importCommand } from './import.js';
import { pause } from './pause.js';
import { prune } from './prune.js';
import { resume } from './resume.js';
import { runs } from './runs.js';
import { salvage } from './salvage.js';
import { show } from './show.js';
import { stats } from './stats.js';
import { waiting } from './waiting.js';

/** Every command, in the order `cairn --help` lists them. */
export const COMMANDS: readonly Command[] = [
  runs,
  show,
  waiting,
  resume,
  pause,
  cancel,
  stats,
  doctor,
  prune,
  exportCommand,
  importCommand,
  salvage,
];
