import { workflow } from '@cairn/core';
import { z } from 'zod';
import { fakeModel, type Completion } from '../lib/services.js';

const usage = (c: Completion) => ({
  model: c.model,
  promptTokens: c.usage.promptTokens,
  completionTokens: c.usage.completionTokens,
  totalTokens: c.usage.totalTokens,
  finishReason: c.finishReason,
});

/**
 * An LLM pipeline: outline a report, draft its sections in parallel, then summarise. Each
 * model call is a step that records the model and token usage; after a crash, calls that
 * finished are never paid for twice.
 */
export const reportPipeline = workflow('llm-report', {
  version: '1',
  input: z.object({
    topic: z.string().min(1),
    sections: z.number().int().min(1).max(8).default(3),
  }),
  async run(ctx, input) {
    const outline = await ctx.step(
      'outline',
      (s) =>
        fakeModel.complete(`Outline a report on ${input.topic}`, {
          idempotencyKey: s.idempotencyKey,
          signal: s.signal,
        }),
      { meta: usage, retry: 3, timeout: '30s' },
    );
    const drafts = await Promise.all(
      Array.from({ length: input.sections }, (_, i) =>
        ctx.step(
          'draft',
          (s) =>
            fakeModel.complete(`Write section ${i + 1} of: ${outline.text}`, {
              idempotencyKey: s.idempotencyKey,
              signal: s.signal,
            }),
          { meta: usage, retry: 3, timeout: '30s' },
        ),
      ),
    );
    const summary = await ctx.step(
      'summarise',
      (s) =>
        fakeModel.complete(`Summarise: ${drafts.map((d) => d.text).join(' ')}`, {
          idempotencyKey: s.idempotencyKey,
          signal: s.signal,
        }),
      { meta: usage, retry: 3, timeout: '30s' },
    );
    const tokens = [outline, ...drafts, summary].reduce((sum, c) => sum + c.usage.totalTokens, 0);
    return {
      topic: input.topic,
      sections: drafts.map((d) => d.text),
      summary: summary.text,
      tokens,
    };
  },
});
