/**
 * Polls `check` until it holds, letting promise callbacks, I/O and timers run between polls:
 * at first every turn of the event loop, then every millisecond. Gives up after `timeoutMs`,
 * which is generous on purpose: a loaded machine is slower, not wrong.
 */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (let i = 0; ; i++) {
    if (await check()) return;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => (i < 100 ? setImmediate(resolve) : setTimeout(resolve, 1)));
  }
}
