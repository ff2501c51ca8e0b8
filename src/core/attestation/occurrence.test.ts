import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBase64Bytes } from '../encoding/base64.js';
import { digestOfResourceUri, parseAttestationOccurrence } from './occurrence.js';

const NOTE = 'projects/demo/notes/n';
const URI = `gcr.io/p/app@sha256:${'ab'.repeat(32)}`;
const payload = Buffer.from('{"critical":{}}');

describe('parseAttestationOccurrence', () => {
  it('decodes the v1 shape gcloud creates (URL-safe base64)', () => {
    const sig = Buffer.from([0xfb, 0xff, 0xfe, 0x01]);
    const r = parseAttestationOccurrence({
      name: 'projects/demo/occurrences/1', kind: 'ATTESTATION', noteName: NOTE, resourceUri: URI,
      attestation: { serializedPayload: payload.toString('base64url'), signatures: [{ publicKeyId: 'k', signature: sig.toString('base64url') }] },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Buffer.from(r.value.serializedPayload ?? []).equals(payload)).toBe(true);
    expect(Buffer.from(r.value.signatures[0]?.signature ?? []).equals(sig)).toBe(true);
    expect(r.value.defect).toBeUndefined();
  });

  it('decodes standard base64 and snake_case fields', () => {
    const r = parseAttestationOccurrence({
      name: 'n', note_name: NOTE, resource_uri: URI,
      attestation: { serialized_payload: payload.toString('base64'), signatures: [{ public_key_id: 'k', signature: '+/+/' }] },
    });
    expect(r.ok && r.value.signatures[0]?.publicKeyId).toBe('k');
  });

  it('decodes the v1beta1 genericSignedAttestation and pgpSignedAttestation shapes', () => {
    const generic = parseAttestationOccurrence({
      name: 'g', noteName: NOTE, resource: { uri: `https://${URI}` },
      attestation: { attestation: { genericSignedAttestation: { contentType: 'SIMPLE_SIGNING_JSON', serializedPayload: payload.toString('base64'), signatures: [{ publicKeyId: 'k', signature: 'AAAA' }] } } },
    });
    expect(generic.ok && generic.value.resourceUri).toBe(`https://${URI}`);
    const pgp = parseAttestationOccurrence({
      name: 'p', noteName: NOTE, resource: { uri: URI },
      attestation: { attestation: { pgpSignedAttestation: { signature: '-----BEGIN PGP MESSAGE-----', pgpKeyId: 'ABCD' } } },
    });
    expect(pgp.ok && pgp.value.serializedPayload).toBeUndefined();
    expect(pgp.ok && new TextDecoder().decode(pgp.value.signatures[0]?.signature)).toBe('-----BEGIN PGP MESSAGE-----');
  });

  it('keeps undecodable attestations as defects so the decision can say why', () => {
    const cases: [unknown, string][] = [
      [{ serializedPayload: '***', signatures: [{ publicKeyId: 'k', signature: 'AAAA' }] }, 'MALFORMED_PAYLOAD'],
      [{ serializedPayload: 'AAAA', signatures: [{ publicKeyId: 'k', signature: 'A' }] }, 'MALFORMED_SIGNATURE'],
      [{ serializedPayload: 'AAAA', signatures: [{ publicKeyId: '', signature: 'AAAA' }] }, 'MALFORMED_SIGNATURE'],
      [{ serializedPayload: 'AAAA', signatures: [] }, 'MISSING_SIGNATURE'],
      [{ serializedPayload: 'AAAA' }, 'MISSING_SIGNATURE'],
    ];
    for (const [attestation, code] of cases) {
      const r = parseAttestationOccurrence({ name: 'x', noteName: NOTE, resourceUri: URI, attestation });
      expect(r.ok && r.value.defect?.code, JSON.stringify(attestation)).toBe(code);
    }
  });

  it('rejects what is not an attestation occurrence', () => {
    expect(parseAttestationOccurrence({ kind: 'VULNERABILITY', noteName: NOTE, resourceUri: URI, vulnerability: {} })).toMatchObject({ ok: false, error: { code: 'NOT_AN_ATTESTATION' } });
    expect(parseAttestationOccurrence({ noteName: NOTE, resourceUri: URI })).toMatchObject({ ok: false, error: { code: 'NOT_AN_ATTESTATION' } });
    expect(parseAttestationOccurrence({ resourceUri: URI, attestation: {} })).toMatchObject({ ok: false, error: { code: 'REQUIRED', path: 'occurrence.noteName' } });
    expect(parseAttestationOccurrence('nope')).toMatchObject({ ok: false });
  });

  it('never throws', () => {
    fc.assert(fc.property(fc.anything(), (v) => { parseAttestationOccurrence(v); }));
    fc.assert(fc.property(fc.record({ noteName: fc.string(), resourceUri: fc.string(), attestation: fc.anything() }), (v) => { parseAttestationOccurrence(v); }));
  });
});

describe('base64 and resource URIs', () => {
  it('decodes both alphabets strictly', () => {
    expect(decodeBase64Bytes('-_8=', 'f')).toMatchObject({ ok: true });
    expect(decodeBase64Bytes('+/8=', 'f')).toMatchObject({ ok: true });
    expect(decodeBase64Bytes('a', 'f')).toMatchObject({ ok: false, error: { code: 'INVALID_BASE64' } });
    expect(decodeBase64Bytes('ab=c', 'f')).toMatchObject({ ok: false });
    expect(decodeBase64Bytes('a b', 'f')).toMatchObject({ ok: false });
    fc.assert(fc.property(fc.uint8Array(), (b) => {
      for (const enc of ['base64', 'base64url'] as const) {
        const r = decodeBase64Bytes(Buffer.from(b).toString(enc), 'f');
        expect(r.ok && Buffer.from(r.value).equals(Buffer.from(b))).toBe(true);
      }
    }));
  });

  it('finds the digest at the end of a resource URI, with or without scheme', () => {
    expect(digestOfResourceUri(URI)).toBe(`sha256:${'ab'.repeat(32)}`);
    expect(digestOfResourceUri(`https://${URI}`)).toBe(`sha256:${'ab'.repeat(32)}`);
    expect(digestOfResourceUri('gcr.io/p/app:v1')).toBeUndefined();
  });
});
