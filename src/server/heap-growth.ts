/**
 * How far V8 lets the old generation grow past its live size before a full collection.
 *
 * With the large heap maximum Node picks on a machine with a few GB, V8 lets the old generation
 * grow to up to 4× its live data. Under a stream of new images the decisions and parsed images the
 * memos keep are promoted and then die there, so most of the server's peak RSS was that garbage:
 * in-process, after 12 000 new images, 209 MB resident with V8's choice against 170 MB with growth
 * set to 1.5×, at the same CPU per decision (full collections of a ~45 MB live heap mark
 * concurrently). `tollgate serve` sets it at startup; V8 reads it at every full collection, so it
 * applies although the heap is already configured.
 */
export const SERVER_HEAP_GROWING_PERCENT = 50;

/**
 * The V8 flag `tollgate serve` sets, or undefined when node was started with its own
 * `--heap-growing-percent` (which then wins; `--heap-growing-percent=0` restores V8's choice).
 */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return undefined;
  return `--heap-growing-percent=${SERVER_HEAP_GROWING_PERCENT}`;
}
