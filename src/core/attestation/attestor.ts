/**
 * Decodes an Attestor resource as the Binary Authorization API returns it: v1 carries
 * `userOwnedGrafeasNote`, v1beta1 the same object as `userOwnedDrydockNote`.
 */
import { err, ok, problem, type Problem, type Result } from '../result.js';
import type { Attestor, AttestorKey } from './model.js';
import { parseAttestorPublicKey } from './public-key.js';

type Obj = Record<string, unknown>;

const ATTESTOR_NAME = /^projects\/[^/]+\/attestors\/[^/]+$/;
const NOTE_NAME = /^projects\/[^/]+\/notes\/[^/]+$/;

export async function parseAttestor(raw: unknown): Promise<Result<Attestor, Problem[]>> {
  if (!isObj(raw)) return err([problem('TYPE', 'attestor: must be an object')]);
  const problems: Problem[] = [];
  const name = raw['name'];
  if (typeof name !== 'string' || !ATTESTOR_NAME.test(name)) {
    problems.push(problem('INVALID_NAME', 'name: must be projects/PROJECT/attestors/ATTESTOR', 'name'));
  }
  const noteField = ['userOwnedGrafeasNote', 'userOwnedDrydockNote', 'user_owned_grafeas_note', 'user_owned_drydock_note']
    .find((k) => isObj(raw[k]));
  if (noteField === undefined) {
    problems.push(problem('REQUIRED', 'userOwnedGrafeasNote: required', 'userOwnedGrafeasNote'));
    return err(problems);
  }
  const note = raw[noteField] as Obj;
  const noteReference = note['noteReference'] ?? note['note_reference'];
  if (typeof noteReference !== 'string' || !NOTE_NAME.test(noteReference)) {
    problems.push(problem('INVALID_NOTE', `${noteField}.noteReference: must be projects/PROJECT/notes/NOTE`, `${noteField}.noteReference`));
  }
  const rawKeys = note['publicKeys'] ?? note['public_keys'] ?? [];
  const keys: AttestorKey[] = [];
  if (!Array.isArray(rawKeys)) {
    problems.push(problem('TYPE', `${noteField}.publicKeys: must be a list`, `${noteField}.publicKeys`));
  } else {
    const parsed = await Promise.all(rawKeys.map((k, i) => parseAttestorPublicKey(k, `${noteField}.publicKeys[${i}]`)));
    for (const r of parsed) {
      if (r.ok) keys.push(r.value);
      else problems.push(r.error);
    }
  }
  if (problems.length > 0) return err(problems);
  const optional = (k: string): string | undefined => (typeof raw[k] === 'string' ? (raw[k] as string) : undefined);
  const delegation = note['delegationServiceAccountEmail'];
  return ok({
    name: name as string,
    noteReference: noteReference as string,
    publicKeys: keys,
    ...(optional('description') === undefined ? {} : { description: optional('description') }),
    ...(typeof delegation === 'string' ? { delegationServiceAccountEmail: delegation } : {}),
    ...(optional('updateTime') === undefined ? {} : { updateTime: optional('updateTime') }),
    ...(optional('etag') === undefined ? {} : { etag: optional('etag') }),
  });
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
