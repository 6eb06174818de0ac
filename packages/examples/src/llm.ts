/** Example: an LLM pipeline whose model calls record the model and token usage. */
import { bold, green, heading, say, timeline } from './lib/print.js';
import { closeEngine, openEngine } from './lib/engine.js';
import { reportPipeline } from './workflows/index.js';

const engine = await openEngine();
heading('LLM report pipeline (deterministic fake model)');
const handle = await engine.start(reportPipeline, { topic: 'durable execution', sections: 3 });
const result = await handle.result();
say(`${green('completed')}: ${result.summary}`);
say(bold('model calls:'));
say(timeline(await engine.tasks(handle.id)));
const tasks = await engine.tasks(handle.id);
const total = tasks.reduce(
  (sum, t) => sum + (typeof t.meta.totalTokens === 'number' ? t.meta.totalTokens : 0),
  0,
);
say(`tokens recorded across steps: ${bold(String(total))} (the run reports ${result.tokens})`);
await closeEngine(engine);
