/**
 * Loads offline evidence: DIR/attestors/*.json (Attestor resources as the API returns them, v1 or
 * v1beta1, or a list response) and DIR/occurrences/*.json (Occurrence resources, a JSON array as
 * `gcloud … attestations list --format=json` prints, or a list response).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAttestor } from '../core/attestation/attestor.js';
import type { AttestationOccurrence, Attestor } from '../core/attestation/model.js';
import { NOT_AN_ATTESTATION, parseAttestationOccurrence } from '../core/attestation/occurrence.js';
import { CliExit, EXIT } from './exit-codes.js';
import { readJson } from './files.js';

export interface LoadedEvidence {
  readonly attestors: Attestor[];
  readonly occurrences: AttestationOccurrence[];
  /** Non-fatal notes, e.g. skipped non-attestation occurrences. */
  readonly notes: string[];
}

export async function loadEvidenceDir(dir: string): Promise<LoadedEvidence> {
  const notes: string[] = [];
  const attestors: Attestor[] = [];
  for (const file of await jsonFiles(join(dir, 'attestors'), true)) {
    for (const [i, item] of items(await readJson(file, 'attestor file'), 'attestors').entries()) {
      const r = await parseAttestor(item);
      if (!r.ok) {
        throw new CliExit(EXIT.USAGE, `${file}${i > 0 ? ` item ${i}` : ''}: invalid attestor:\n${r.error.map((p) => `  ${p.message}`).join('\n')}`);
      }
      if (attestors.some((a) => a.name === r.value.name)) throw new CliExit(EXIT.USAGE, `${file}: attestor ${r.value.name} is defined twice`);
      attestors.push(r.value);
    }
  }
  const occurrences: AttestationOccurrence[] = [];
  for (const file of await jsonFiles(join(dir, 'occurrences'), false)) {
    for (const [i, item] of items(await readJson(file, 'occurrence file'), 'occurrences').entries()) {
      const r = parseAttestationOccurrence(item, `${file}[${i}]`);
      if (r.ok) occurrences.push(r.value);
      else if (r.error.code === NOT_AN_ATTESTATION) notes.push(`skipped ${r.error.message}`);
      else throw new CliExit(EXIT.USAGE, `invalid occurrence: ${r.error.message}`);
    }
  }
  return { attestors, occurrences, notes };
}

async function jsonFiles(dir: string, required: boolean): Promise<string[]> {
  try {
    const names = await readdir(dir);
    return names.filter((n) => n.endsWith('.json')).sort().map((n) => join(dir, n));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !required) return [];
    throw new CliExit(EXIT.USAGE, `cannot read evidence folder ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

/** A file may hold one resource, a JSON array of them, or a list response `{field: [...]}`. */
function items(doc: unknown, listField: string): unknown[] {
  if (Array.isArray(doc)) return doc;
  if (typeof doc === 'object' && doc !== null && Array.isArray((doc as Record<string, unknown>)[listField])) {
    return (doc as Record<string, unknown[]>)[listField] as unknown[];
  }
  return [doc];
}
