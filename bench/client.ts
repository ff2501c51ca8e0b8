/**
 * The load generator's HTTPS client: one keep-alive TLS connection carrying one HTTP/1.1 request
 * at a time, as the Kubernetes API server's webhook client does. Written for the bench instead of
 * using `node:https` because the load generator shares the two cores with the server it
 * measures: Node's HTTP client (agent, ClientRequest, IncomingMessage, header objects) cost
 * ~70–120 µs of CPU per review here, almost a core at the floors' rates, and at half load its
 * own backlog after each garbage collection showed up as the server's latency tail.
 *
 * It reads what the bench's servers answer: a status line, headers and a body framed by
 * `Content-Length` or `Transfer-Encoding: chunked` (Node sends the latter after `writeHead`).
 * Anything else — bytes after the body, a malformed chunk, a closed connection — is an error for
 * that review, never silently accepted.
 */
import { connect, type TLSSocket } from 'node:tls';

export interface Answer {
  readonly status: number;
  readonly text: string;
}

const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');

export class Connection {
  private socket: TLSSocket | undefined;
  private pending: { resolve: (a: Answer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Bytes of headers including the blank line, once they are complete. */
  private headerBytes = -1;
  /** The body's length with `Content-Length`; -1 for a chunked body. */
  private bodyBytes = -1;
  private chunked = false;
  private status = 0;
  private closeAfter = false;
  /** Settles when the current socket's TLS handshake does. */
  private handshake: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly ca: string,
    private readonly timeoutMs: number,
  ) {}

  /** POSTs a JSON body to `path` and resolves with the answer. */
  post(path: string, json: string): Promise<Answer> {
    if (this.pending !== undefined) return Promise.reject(new Error('a request is already in flight on this connection'));
    const socket = this.socket ?? this.open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no answer within ${this.timeoutMs / 1000} s`)), this.timeoutMs);
      this.pending = { resolve, reject, timer };
      // Head and body in one write (one TLS record), encoded once.
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`, 'utf8');
    });
  }

  /**
   * Opens the connection and completes its TLS handshake, so that a measured run starts on
   * established connections (as the API server's are in steady state) and its first reviews
   * are not timed with a handshake each.
   */
  connect(): Promise<void> {
    if (this.socket === undefined) this.open();
    return this.handshake;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private open(): TLSSocket {
    const socket = connect({ host: this.host, port: this.port, ca: this.ca, servername: this.host === '127.0.0.1' ? undefined : this.host });
    socket.setNoDelay(true);
    this.handshake = new Promise((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('the connection closed during its TLS handshake')));
    });
    // Nobody may be waiting for it (a request is written at once and fails on its own).
    this.handshake.catch(() => undefined);
    // A socket this connection has already dropped may still report; only the current one counts.
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.onData(chunk);
    });
    socket.on('error', (e) => {
      if (this.socket === socket) this.fail(e);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.fail(new Error('the server closed the connection'));
    });
    this.socket = socket;
    return socket;
  }

  private onData(chunk: Buffer): void {
    if (this.pending === undefined) {
      this.fail(new Error(`${chunk.length} bytes arrived with no request in flight`));
      return;
    }
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.headerBytes < 0 && !this.parseHead()) return;
    let text: string;
    if (this.chunked) {
      const all = this.joined();
      const body = dechunk(all, this.headerBytes);
      if (body === 'incomplete') return;
      if (typeof body === 'object' && 'error' in body) return this.fail(new Error(body.error));
      text = body.text;
    } else {
      if (this.received < this.headerBytes + this.bodyBytes) return;
      if (this.received > this.headerBytes + this.bodyBytes) {
        return this.fail(new Error(`${this.received - this.headerBytes - this.bodyBytes} bytes after the answer's body`));
      }
      text = this.joined().toString('utf8', this.headerBytes);
    }
    const answer = { status: this.status, text };
    const { resolve, timer } = this.pending;
    clearTimeout(timer);
    this.reset();
    if (this.closeAfter) this.close();
    resolve(answer);
  }

  private joined(): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.received);
    this.chunks = [all];
    return all;
  }

  /** Reads the status line and headers once they are complete; false while they are not. */
  private parseHead(): boolean {
    const all = this.joined();
    const end = all.indexOf(HEADER_END);
    if (end < 0) return false;
    const lines = all.toString('latin1', 0, end).split('\r\n');
    const statusLine = /^HTTP\/1\.1 (\d{3})/.exec(lines[0] ?? '');
    if (statusLine === null) {
      this.fail(new Error(`not an HTTP/1.1 status line: ${JSON.stringify(lines[0])}`));
      return false;
    }
    let length = -1;
    let chunked = false;
    let close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i] as string;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') {
        if (value.toLowerCase() !== 'chunked') {
          this.fail(new Error(`an answer with Transfer-Encoding: ${value}`));
          return false;
        }
        chunked = true;
      } else if (name === 'connection' && value.toLowerCase() === 'close') close = true;
    }
    if (!chunked && !(Number.isSafeInteger(length) && length >= 0)) {
      this.fail(new Error('an answer with neither a valid Content-Length nor a chunked body'));
      return false;
    }
    this.status = Number(statusLine[1]);
    this.headerBytes = end + HEADER_END.length;
    this.bodyBytes = chunked ? -1 : length;
    this.chunked = chunked;
    this.closeAfter = close;
    return true;
  }

  private reset(): void {
    this.pending = undefined;
    this.chunks = [];
    this.received = 0;
    this.headerBytes = -1;
    this.bodyBytes = -1;
    this.chunked = false;
  }

  /** Fails the request in flight (if any) and drops the connection; the next request reconnects. */
  private fail(e: Error): void {
    const pending = this.pending;
    this.reset();
    if (this.socket !== undefined) {
      const s = this.socket;
      this.socket = undefined;
      s.destroy();
    }
    if (pending !== undefined) {
      clearTimeout(pending.timer);
      pending.reject(e);
    }
  }
}

const CRLF = Buffer.from('\r\n', 'latin1');

/**
 * A chunked body from `from` to the end of `all` (RFC 9112 §7.1; trailers are not expected and
 * refused): its text, 'incomplete' while more bytes must come, or what is wrong with it.
 */
function dechunk(all: Buffer, from: number): { text: string } | 'incomplete' | { error: string } {
  const parts: Buffer[] = [];
  let at = from;
  for (;;) {
    const lineEnd = all.indexOf(CRLF, at);
    if (lineEnd < 0) return 'incomplete';
    const sizeText = all.toString('latin1', at, lineEnd).split(';')[0]?.trim() ?? '';
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) return { error: `a malformed chunk size ${JSON.stringify(sizeText)}` };
    const size = parseInt(sizeText, 16);
    const dataStart = lineEnd + CRLF.length;
    if (size === 0) {
      if (all.length < dataStart + CRLF.length) return 'incomplete';
      if (!all.subarray(dataStart, dataStart + CRLF.length).equals(CRLF)) return { error: 'trailers after a chunked body' };
      if (all.length > dataStart + CRLF.length) return { error: `${all.length - dataStart - CRLF.length} bytes after the answer's body` };
      return { text: Buffer.concat(parts).toString('utf8') };
    }
    if (all.length < dataStart + size + CRLF.length) return 'incomplete';
    if (!all.subarray(dataStart + size, dataStart + size + CRLF.length).equals(CRLF)) return { error: 'a chunk not followed by CRLF' };
    parts.push(all.subarray(dataStart, dataStart + size));
    at = dataStart + size + CRLF.length;
  }
}
