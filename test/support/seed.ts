/**
 * Seeds a running `tollgate serve` (test/support/server.ts) through its public APIs, as users do:
 * notes, attestors and signed attestations. Shared by the end-to-end tests so that each of them
 * sets up its evidence the same way and keeps only its own policy and assertions.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSignaturePayload } from '../../src/core/attestation/payload.js';
import { opensslSign, readFixtureText, ROOT } from './fixtures.js';
import type { Json } from './k8s.js';
import type { TestServer } from './server.js';

/**
 * Sends an admin request and returns the response body. Setup steps must not fail silently, so
 * anything but 200 throws with the method, path, status and body of the failed call.
 */
export async function ok(server: TestServer, method: string, path: string, body?: unknown) {
  const r = await server.request(method, path, body);
  if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

/** Creates an ATTESTATION note: every attestor points at one, and attestations are occurrences of it. */
export function createNote(server: TestServer, project: string, noteId: string, humanReadableName: string) {
  return ok(server, 'POST', `/v1/projects/${project}/notes?noteId=${noteId}`, { attestation: { hint: { humanReadableName } } });
}

/** The project the repository's examples (examples/evidence/) are written for. */
const EXAMPLE_PROJECT = 'demo';

function readExample(...parts: string[]): unknown {
  return JSON.parse(readFileSync(join(ROOT, 'examples', 'evidence', ...parts), 'utf8'));
}

/**
 * Loads the repository's example evidence through the APIs: note `build-note`, attestor
 * `build-attestor` (examples/evidence/attestors/) and its attestation of the signed example image
 * (examples/evidence/occurrences/), so tests exercise the evidence users start from. The caller
 * PUTs its own policy afterwards.
 */
export async function seedExampleEvidence(server: TestServer): Promise<void> {
  const attestor = readExample('attestors', 'build-attestor.json') as Json;
  const [occurrence] = readExample('occurrences', 'attestations.json') as Json[];
  await createNote(server, EXAMPLE_PROJECT, 'build-note', 'build');
  await ok(server, 'POST', `/v1/projects/${EXAMPLE_PROJECT}/attestors?attestorId=build-attestor`, { name: attestor['name'], userOwnedGrafeasNote: { noteReference: attestor['userOwnedGrafeasNote'].noteReference, publicKeys: attestor['userOwnedGrafeasNote'].publicKeys } });
  await ok(server, 'POST', `/v1/projects/${EXAMPLE_PROJECT}/occurrences`, { kind: 'ATTESTATION', noteName: occurrence?.['noteName'], resourceUri: occurrence?.['resourceUri'], attestation: occurrence?.['attestation'] });
}

/**
 * An attestor whose only key is the ECDSA P-256 PKIX fixture (testdata/pkix/ECDSA_P256_SHA256):
 * tests sign with its private key through openssl, never with the code under test.
 */
export interface FixtureAttestor {
  readonly project: string;
  readonly noteId: string;
  readonly attestorId: string;
  /** The public key's id in the attestor, which signatures name. */
  readonly keyId: string;
}

const FIXTURE_ALGORITHM = 'ECDSA_P256_SHA256';

/** Creates the attestor's note (with that human-readable name) and the attestor holding the fixture key. */
export async function createFixtureAttestor(server: TestServer, a: FixtureAttestor, humanReadableName: string): Promise<void> {
  await createNote(server, a.project, a.noteId, humanReadableName);
  await ok(server, 'POST', `/v1/projects/${a.project}/attestors?attestorId=${a.attestorId}`, {
    name: `projects/${a.project}/attestors/${a.attestorId}`,
    userOwnedGrafeasNote: { noteReference: `projects/${a.project}/notes/${a.noteId}`, publicKeys: [{ id: a.keyId, pkixPublicKey: { publicKeyPem: readFixtureText('pkix', FIXTURE_ALGORITHM, 'public.pem'), signatureAlgorithm: FIXTURE_ALGORITHM } }] },
  });
}

/**
 * Attests an image for a fixture attestor as a signer would: the gcloud signature payload, signed
 * by openssl with the fixture's private key, posted as an occurrence of the attestor's note.
 * Returns the occurrence's name (to delete it later).
 */
export async function attest(server: TestServer, a: FixtureAttestor, image: string): Promise<string> {
  const payload = createSignaturePayload(image);
  if (!payload.ok) throw new Error(payload.error.message);
  const sig = opensslSign(FIXTURE_ALGORITHM, FIXTURE_ALGORITHM, Buffer.from(payload.value));
  const occ = await ok(server, 'POST', `/v1/projects/${a.project}/occurrences`, {
    kind: 'ATTESTATION', noteName: `projects/${a.project}/notes/${a.noteId}`, resourceUri: image,
    attestation: { serializedPayload: Buffer.from(payload.value).toString('base64'), signatures: [{ publicKeyId: a.keyId, signature: sig.toString('base64') }] },
  });
  return occ.name as string;
}
