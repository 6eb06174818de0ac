/**
 * A child exits when its parent goes away (stdin closes) or after `maxMs`, so a failed or
 * interrupted test never leaves a process holding a store open.
 */
export function exitWithParent(maxMs = 60_000): void {
  process.stdin.on('end', () => process.exit(70));
  process.stdin.resume();
  setTimeout(() => process.exit(71), maxMs).unref();
}
