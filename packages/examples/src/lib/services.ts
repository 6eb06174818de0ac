import { createHash } from 'node:crypto';
import { delay, journal, serviceDelay } from './journal.js';

/** Fake services the examples call: each call takes a little time and is journaled. */
export const payments = {
  async send(
    to: string,
    amount: number,
    options: { idempotencyKey: string; signal?: AbortSignal },
  ): Promise<{ paymentId: string }> {
    await delay(serviceDelay(120), options.signal);
    journal('payments', options.idempotencyKey, { to, amount });
    const paymentId = `pay_${createHash('sha256').update(options.idempotencyKey).digest('hex').slice(0, 10)}`;
    return { paymentId };
  },
};

export const email = {
  async send(
    to: string,
    subject: string,
    options: { idempotencyKey: string },
  ): Promise<{ sent: true }> {
    await delay(serviceDelay(60));
    journal('email', options.idempotencyKey, { to, subject });
    return { sent: true };
  },
};

export const inventory = {
  async reserve(
    sku: string,
    quantity: number,
    options: { idempotencyKey: string },
  ): Promise<{ reservation: string }> {
    await delay(serviceDelay(100));
    journal('inventory', options.idempotencyKey, { sku, quantity });
    return { reservation: `res_${sku}_${quantity}` };
  },
};

/** A card processor that fails the first attempt of every charge, to show retries. */
export const cards = {
  async charge(
    amount: number,
    options: { idempotencyKey: string; attempt: number },
  ): Promise<{ chargeId: string }> {
    await delay(serviceDelay(80));
    journal('cards', options.idempotencyKey, { amount, attempt: options.attempt });
    if (options.attempt === 1) throw new Error('card processor timed out (503)');
    return {
      chargeId: `ch_${createHash('sha256').update(options.idempotencyKey).digest('hex').slice(0, 10)}`,
    };
  },
};

export interface Completion {
  readonly text: string;
  readonly model: string;
  readonly usage: {
    readonly promptTokens: number;
    readonly completionTokens: number;
    readonly totalTokens: number;
  };
  readonly finishReason: 'stop';
}

/**
 * A deterministic fake language model: the same prompt always gives the same text and
 * token counts, so the LLM example runs offline and its output can be checked.
 */
export const fakeModel = {
  name: 'fake-gpt-mini',
  async complete(
    prompt: string,
    options: { idempotencyKey: string; signal?: AbortSignal },
  ): Promise<Completion> {
    await delay(serviceDelay(150), options.signal);
    const digest = createHash('sha256').update(prompt).digest('hex');
    const words = [
      'durable',
      'steps',
      'replay',
      'checkpoint',
      'resume',
      'store',
      'ledger',
      'signal',
    ];
    const text = Array.from(
      { length: 12 },
      (_, i) => words[parseInt(digest.slice(i * 2, i * 2 + 2), 16) % words.length],
    )
      .join(' ')
      .replace(/^./, (c) => c.toUpperCase());
    const promptTokens = Math.ceil(prompt.split(/\s+/).length * 1.3);
    const completionTokens = 16;
    journal('llm', options.idempotencyKey, { promptTokens });
    return {
      text: `${text}.`,
      model: fakeModel.name,
      usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens },
      finishReason: 'stop',
    };
  },
};
