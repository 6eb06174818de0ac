import type { Command } from '../command.js';
import { runs } from './runs.js';
import { show } from './show.js';
import { waiting } from './waiting.js';

/** Every command, in the order `cairn --help` lists them. */
export const COMMANDS: readonly Command[] = [runs, show, waiting];
