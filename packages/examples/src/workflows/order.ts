import { workflow } from '@cairn/core';
import { z } from 'zod';
import { delay, journal, serviceDelay } from '../lib/journal.js';
import { cards, email, inventory } from '../lib/services.js';

const Order = z.object({
  orderId: z.string().min(1),
  customer: z.string().email(),
  items: z
    .array(
      z.object({
        sku: z.string(),
        quantity: z.number().int().positive(),
        price: z.number().positive(),
      }),
    )
    .min(1),
});

/** Shipping, as a child workflow of the order. */
export const shipOrder = workflow('ship-order', {
  version: '1',
  input: z.object({ orderId: z.string(), items: z.number().int().positive() }),
  async run(ctx, input) {
    await ctx.step('pick', async (s) => {
      await delay(serviceDelay(80));
      journal('warehouse', s.idempotencyKey, { action: 'pick' });
    });
    await ctx.step('pack', async (s) => {
      await delay(serviceDelay(80));
      journal('warehouse', s.idempotencyKey, { action: 'pack' });
    });
    const label = await ctx.step(
      'label',
      () => `TRACK-${input.orderId.toUpperCase()}-${input.items}`,
    );
    return { tracking: label };
  },
});

/**
 * An order pipeline: validate, then reserve stock and charge the card in parallel (the
 * card processor fails the first attempt, so the charge is retried), ship through a child
 * workflow, and confirm by email.
 */
export const orderPipeline = workflow('order-pipeline', {
  version: '1',
  input: Order,
  async run(ctx, order) {
    const total = await ctx.step('validate', () =>
      order.items.reduce((sum, item) => sum + item.quantity * item.price, 0),
    );
    const [reservations, charge] = await Promise.all([
      Promise.all(
        order.items.map((item) =>
          ctx.step('reserve', (s) =>
            inventory.reserve(item.sku, item.quantity, { idempotencyKey: s.idempotencyKey }),
          ),
        ),
      ),
      ctx.step(
        'charge',
        (s) => cards.charge(total, { idempotencyKey: s.idempotencyKey, attempt: s.attempt }),
        {
          retry: { attempts: 4, initialDelay: '100ms' },
        },
      ),
    ]);
    const shipment = await ctx.child('ship', shipOrder, {
      orderId: order.orderId,
      items: order.items.length,
    });
    await ctx.step('confirm', (s) =>
      email.send(order.customer, `Order ${order.orderId} is on its way (${shipment.tracking})`, {
        idempotencyKey: s.idempotencyKey,
      }),
    );
    return {
      orderId: order.orderId,
      total,
      chargeId: charge.chargeId,
      reservations: reservations.map((r) => r.reservation),
      tracking: shipment.tracking,
    };
  },
});
