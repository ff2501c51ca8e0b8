/**
 * An AdmissionReview's body as text for `JSON.parse`, with every `managedFields` array emptied.
 *
 * The API server sends each object with its `metadata.managedFields` (server-side apply's field
 * ownership): about a quarter of a typical review's bytes and a third of the time `JSON.parse`
 * takes on it, for a field that names no image and that no decision or audit entry reads. So
 * its arrays are cut out of the text before parsing, and the review parses as if they were `[]`.
 *
 * The cut is exact for valid JSON without a parser of its own. The API server's encoder writes
 * compact JSON, where a key is preceded by `{` or `,`; so only the bytes `{"managedFields":[`
 * and `,"managedFields":[` are cut at. Neither can occur inside a string (a quote there is
 * always escaped, `\"`), and a quote right after `{` or `,` either opens a string, here the key
 * `managedFields`, or closes one, which would leave `managedFields` as bare text: invalid JSON.
 * From the `[`, the array's end is found by counting brackets outside strings. Whatever does not
 * fit (whitespace around the colon, an array that does not close) is left for `JSON.parse` as it
 * is. A body that is invalid JSON only inside a `managedFields` array parses as if the array
 * were empty: the API server never sends one, and another caller only gets an answer about the
 * object it sent.
 */
// Searched for without its opening quote: a needle that starts with `"`, the commonest byte in
// JSON, took Node's search twice as long; the quote and what precedes it are checked after.
const KEY = Buffer.from('managedFields":[', 'latin1');
const QUOTE = 0x22;
const OPEN_BRACE = 0x7b;
const COMMA = 0x2c;

export function reviewText(raw: Buffer): string {
  let at = raw.indexOf(KEY);
  if (at < 0) return raw.toString('utf8');
  let text = '';
  let from = 0;
  while (at >= 0) {
    const open = at + KEY.length - 1;
    const before = at > 1 && raw[at - 1] === QUOTE ? raw[at - 2] : undefined;
    if (before === OPEN_BRACE || before === COMMA) {
      const close = arrayEnd(raw, open);
      if (close < 0) break;
      text += raw.toString('utf8', from, open + 1);
      from = close;
      at = raw.indexOf(KEY, close);
    } else {
      at = raw.indexOf(KEY, at + 1);
    }
  }
  return from === 0 ? raw.toString('utf8') : text + raw.toString('utf8', from);
}

/** The index of the `]` that closes the array opened at `open`, or -1 when it does not close. */
function arrayEnd(b: Buffer, open: number): number {
  let depth = 0;
  for (let i = open; i < b.length; i++) {
    const c = b[i] as number;
    if (c === 0x22) {
      // A string: skip to its closing quote, stepping over escapes.
      for (i++; i < b.length; i++) {
        const d = b[i] as number;
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      depth++;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) return c === 0x5d ? i : -1;
    }
  }
  return -1;
}
