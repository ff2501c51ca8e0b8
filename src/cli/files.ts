import { readFile } from 'node:fs/promises';
import { CliExit, EXIT } from './exit-codes.js';

export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? String(e);
    throw new CliExit(EXIT.USAGE, `cannot read ${what} ${path}: ${reason}`);
  }
}

export async function readJson(path: string, what: string): Promise<unknown> {
  const text = await readText(path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CliExit(EXIT.USAGE, `${what} ${path} is not valid JSON: ${(e as Error).message}`);
  }
}
