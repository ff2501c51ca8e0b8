/** Guards for untrusted JSON, shared by the core and every adapter that reads JSON bodies. */

/** A JSON object (`{…}`): not null, not a list. */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
