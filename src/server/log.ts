/** Structured JSON-line logs on stderr. Never pass key material or tokens to a logger. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

type Fields = Record<string, unknown>;

export interface Logger {
  /** `fields` may be a function, called only when the level is logged (for hot paths). */
  log(level: LogLevel, msg: string, fields?: Fields | (() => Fields)): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(minLevel: LogLevel = 'info', write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  const log = (level: LogLevel, msg: string, fields: Fields | (() => Fields) = {}) => {
    if (ORDER[level] < ORDER[minLevel]) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...(typeof fields === 'function' ? fields() : fields) })}\n`);
  };
  return {
    log,
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
  };
}
