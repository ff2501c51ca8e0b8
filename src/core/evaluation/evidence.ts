/**
 * Evidence is what an evaluation knows about attestors and attestations. The evaluation itself is
 * synchronous and pure; evidence is gathered (and signatures verified) before it, by whoever
 * owns the data: the offline CLI from files, the server from its store and caches.
 */
import { checkAttestation } from '../attestation/check.js';
import type { AttestationCheck, AttestationOccurrence, Attestor } from '../attestation/model.js';
import { digestOfResourceUri } from '../attestation/occurrence.js';
import type { AttestorUnavailableCode } from './decision.js';

export type AttestorLookup =
  | { readonly found: true; readonly attestor: Attestor }
  | { readonly found: false; readonly code: AttestorUnavailableCode; readonly message: string };

export interface Evidence {
  attestor(name: string): AttestorLookup;
  /**
   * The checked attestations that may concern `digest` for this attestor: those whose resource
   * URI names the digest, and those whose verified payload names it.
   */
  checks(attestorName: string, digest: string): readonly AttestationCheck[];
}

/**
 * Builds evidence from every attestor and occurrence at hand, checking each occurrence against
 * each attestor once. For the offline CLI and tests; the server indexes by digest instead.
 */
export async function buildEvidence(
  attestors: readonly Attestor[],
  occurrences: readonly AttestationOccurrence[],
  now: Date,
): Promise<Evidence> {
  const byName = new Map(attestors.map((a) => [a.name, a]));
  const index = new Map<string, Map<string, AttestationCheck[]>>();
  for (const attestor of attestors) {
    const perDigest = new Map<string, AttestationCheck[]>();
    index.set(attestor.name, perDigest);
    for (const occurrence of occurrences) {
      const uriDigest = digestOfResourceUri(occurrence.resourceUri);
      // An occurrence on another note is only worth reporting where it names the image; otherwise
      // every attestor would list every other attestor's attestations.
      if (occurrence.noteName !== attestor.noteReference && uriDigest === undefined) continue;
      const check = await checkAttestation(attestor, occurrence, now);
      const digests = new Set<string>();
      if (uriDigest !== undefined) digests.add(uriDigest);
      if (check.kind === 'verified') digests.add(check.payloadDigest);
      for (const d of digests) {
        const list = perDigest.get(d) ?? [];
        list.push(check);
        perDigest.set(d, list);
      }
    }
  }
  return {
    attestor(name) {
      const attestor = byName.get(name);
      return attestor === undefined
        ? { found: false, code: 'ATTESTOR_NOT_FOUND', message: `attestor ${name} not found` }
        : { found: true, attestor };
    },
    checks(attestorName, digest) {
      return index.get(attestorName)?.get(digest.toLowerCase()) ?? [];
    },
  };
}
