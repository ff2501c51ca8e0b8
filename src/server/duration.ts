/**
 * Durations as Tollgate takes them in flags and requests: `3600s`, `90m`, `24h`, `30d`, `1h30m`
 * (Google's `"3600s"` form included; fractions with any unit).
 */
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };

/** The duration in seconds, or undefined when the text is not one. */
export function durationSeconds(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+(\.\d+)?[smhd])+$/.test(s)) return undefined;
  let seconds = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)([smhd])/g)) seconds += Number(m[1]) * (UNIT_SECONDS[m[2] as string] as number);
  return seconds;
}
