/**
 * Container Analysis: the pure helpers (filters, request reading, wire shapes, the indexed
 * attestation lookup over a real SQLite store), then the REST methods through a real listening
 * `tollgate serve`.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../../test/support/server.js';
import { ApiError } from '../errors.js';
import { openStore } from '../store/sql-store.js';
import type { JsonObject, Store, StoredResource } from '../store/store.js';
import {
  filterIndexKeys,
  filterMatches,
  listAttestationOccurrences,
  listAttestationOccurrencesOf,
  noteToWire,
  occurrenceDetails,
  occurrenceToWire,
  parseFilter,
  readNote,
  readOccurrence,
  type FilterTerm,
} from './containeranalysis.js';

const DIGEST = `sha256:${'9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706'}`;
const OTHER_DIGEST = `sha256:${'a'.repeat(64)}`;
const IMAGE = `us-docker.pkg.dev/demo/apps/hello@${DIGEST}`;

/** The ApiError a call throws (fails the test when it does not throw one). */
function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError');
}

// ---------------------------------------------------------------------------------------------
// Filters
// ---------------------------------------------------------------------------------------------

describe('parseFilter', () => {
  const accepted: [string | null, FilterTerm[]][] = [
    [null, []],
    ['', []],
    ['   ', []],
    // gcloud `attestations list --artifact-url`, byte for byte
    [`has_suffix(resourceUrl, "${DIGEST}")`, [{ field: 'resourceUrl', op: 'hasSuffix', value: DIGEST }]],
    // the docs' REST example
    [`resourceUrl="https://${IMAGE}"`, [{ field: 'resourceUrl', op: 'equals', value: `https://${IMAGE}` }]],
    [
      `kind="ATTESTATION" AND resourceUrl="https://${IMAGE}"`,
      [
        { field: 'kind', op: 'equals', value: 'ATTESTATION' },
        { field: 'resourceUrl', op: 'equals', value: `https://${IMAGE}` },
      ],
    ],
    ['kind = ATTESTATION', [{ field: 'kind', op: 'equals', value: 'ATTESTATION' }]],
    [`  resource_url = 'gcr.io/p/i'  `, [{ field: 'resourceUrl', op: 'equals', value: 'gcr.io/p/i' }]],
    ['noteName="projects/demo/notes/n"', [{ field: 'noteName', op: 'equals', value: 'projects/demo/notes/n' }]],
    ['has_suffix( resourceUrl ,"a\\"b" )', [{ field: 'resourceUrl', op: 'hasSuffix', value: 'a"b' }]],
  ];
  it.each(accepted)('accepts %j', (text, terms) => {
    expect(parseFilter(text)).toEqual(terms);
  });

  const rejected: [string, RegExp][] = [
    ['resourceUrl!="x"', /unsupported expression `resourceUrl!="x"`/],
    ['kind="ATTESTATION" OR kind="BUILD"', /unsupported expression `kind="ATTESTATION" OR kind="BUILD"`/],
    ['kind="ATTESTATION" AND foo="bar"', /unsupported expression `foo="bar"`/],
    ['has_suffix(noteName, "x")', /unsupported expression `has_suffix\(noteName, "x"\)`/],
    ['resourceUrl:"x"', /unsupported expression/],
    ['(kind="ATTESTATION")', /unsupported expression `\(kind="ATTESTATION"\)`/],
    ['kind="ATTESTATION" and resourceUrl="x"', /unsupported expression/],
    ['resourceUrl=x', /unsupported expression `resourceUrl=x`/],
    ['kind="NOPE"', /"NOPE" is not a kind/],
    ['AND kind="ATTESTATION"', /missing around AND/],
    ['kind="ATTESTATION" AND', /missing around AND/],
    ['resourceUrl="unterminated', /unterminated string/],
  ];
  it.each(rejected)('rejects %j with INVALID_ARGUMENT naming it', (text, message) => {
    const e = apiError(() => parseFilter(text));
    expect(e.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
  });

  it('limits the fields to what the list supports (notes: kind only)', () => {
    expect(parseFilter('kind="ATTESTATION"', ['kind'])).toEqual([{ field: 'kind', op: 'equals', value: 'ATTESTATION' }]);
    const e = apiError(() => parseFilter('resourceUrl="x"', ['kind']));
    expect(e.message).toMatch(/unsupported expression `resourceUrl="x"`; Tollgate supports kind="KIND", joined with AND/);
  });
});

describe('filterMatches and filterIndexKeys', () => {
  const stored = { resourceUri: IMAGE, noteName: 'projects/demo/notes/n', kind: 'ATTESTATION' };
  const withScheme = { ...stored, resourceUri: `https://${IMAGE}` };
  const cases: [string, JsonObject, boolean][] = [
    [`has_suffix(resourceUrl, "${DIGEST}")`, stored, true],
    [`has_suffix(resourceUrl, "${DIGEST}")`, withScheme, true],
    [`has_suffix(resourceUrl, "${OTHER_DIGEST}")`, stored, false],
    [`has_suffix(resourceUrl, "${DIGEST.toUpperCase().replace('SHA256', 'sha256')}")`, stored, false],
    [`resourceUrl="https://${IMAGE}"`, stored, true],
    [`resourceUrl="${IMAGE}"`, withScheme, true],
    [`resourceUrl="https://${IMAGE}"`, withScheme, true],
    [`resourceUrl="gcr.io/elsewhere@${DIGEST}"`, stored, false],
    [`kind="ATTESTATION" AND resourceUrl="https://${IMAGE}"`, stored, true],
    [`kind="BUILD" AND resourceUrl="https://${IMAGE}"`, stored, false],
    ['noteName="projects/demo/notes/n"', stored, true],
    ['noteName="projects/demo/notes/m"', stored, false],
    ['', stored, true],
  ];
  it.each(cases)('%j on %j → %s', (text, body, expected) => {
    expect(filterMatches(parseFilter(text), body)).toBe(expected);
  });

  it('pins the digest index for gcloud has_suffix and for equality, never for a partial suffix', () => {
    expect(filterIndexKeys(parseFilter(`has_suffix(resourceUrl, "${DIGEST}")`))).toEqual({ k2: DIGEST });
    expect(filterIndexKeys(parseFilter(`has_suffix(resourceUrl, "${DIGEST.toUpperCase().replace('SHA256', 'sha256')}")`))).toEqual({ k2: DIGEST });
    expect(filterIndexKeys(parseFilter(`has_suffix(resourceUrl, "hello@${DIGEST}")`))).toEqual({ k2: DIGEST });
    expect(filterIndexKeys(parseFilter(`resourceUrl="https://${IMAGE}"`))).toEqual({ k2: DIGEST });
    expect(filterIndexKeys(parseFilter(`has_suffix(resourceUrl, "${DIGEST.slice(20)}")`))).toEqual({});
    expect(filterIndexKeys(parseFilter('resourceUrl="gcr.io/p/img:tag"'))).toEqual({});
    expect(filterIndexKeys(parseFilter('kind="ATTESTATION" AND noteName="projects/p/notes/n"'))).toEqual({ k1: 'projects/p/notes/n' });
  });
});

// ---------------------------------------------------------------------------------------------
// Notes
// ---------------------------------------------------------------------------------------------

describe('readNote', () => {
  it('reads the tutorials\' snake_case note and ignores the output-only name', () => {
    const n = readNote({ name: 'projects/x/notes/ignored', attestation: { hint: { human_readable_name: 'Attestor for secure Flask app' } } });
    expect(n.details).toEqual({ kind: 'ATTESTATION', field: 'attestation' });
    expect(n.fields).toEqual({ attestation: { hint: { humanReadableName: 'Attestor for secure Flask app' } } });
  });

  it('stores v1beta1 attestationAuthority (either spelling) as the v1 attestation details', () => {
    for (const key of ['attestationAuthority', 'attestation_authority']) {
      const n = readNote({ [key]: { hint: { humanReadableName: 'qa' } }, short_description: 's', kind: 'ATTESTATION' });
      expect(n.details?.kind).toBe('ATTESTATION');
      expect(n.fields).toEqual({ shortDescription: 's', attestation: { hint: { humanReadableName: 'qa' } } });
    }
  });

  it('keeps the details of other kinds as given', () => {
    const n = readNote({ build: { builder_version: '1' }, relatedUrl: [{ url: 'https://x', label: 'x' }], expirationTime: '2030-01-01T00:00:00Z' });
    expect(n.details?.kind).toBe('BUILD');
    expect(n.fields).toEqual({ build: { builder_version: '1' }, relatedUrl: [{ url: 'https://x', label: 'x' }], expirationTime: '2030-01-01T00:00:00Z' });
  });

  const rejected: [Record<string, unknown>, RegExp][] = [
    [{}, /the note type is required/],
    [{ attestaton: { hint: {} } }, /Unknown name "attestaton" at 'note'/],
    [{ attestation: {}, build: {} }, /one type; both "attestation" and "build"/],
    [{ attestation: {}, kind: 'BUILD' }, /note\.kind: BUILD does not match the note's details, which are ATTESTATION/],
    [{ attestation: {}, kind: 'NOPE' }, /"NOPE" is not a NoteKind/],
    [{ attestation: 'x' }, /note\.attestation: must be an object/],
    [{ attestation: { hint: { humanReadableName: 7 } } }, /note\.attestation\.hint\.humanReadableName: must be a string/],
    [{ attestation: {}, expirationTime: 'tomorrow' }, /note\.expirationTime: "tomorrow" is not an RFC 3339 timestamp/],
    [{ attestation: {}, relatedUrl: [{ href: 'x' }] }, /Unknown name "href" at 'note.relatedUrl\[0\]'/],
    [{ attestation: {}, shortDescription: 'a', short_description: 'b' }, /given twice/],
  ];
  it.each(rejected)('rejects %j', (raw, message) => {
    const e = apiError(() => readNote(raw));
    expect(e.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
  });
});

function stored(kind: 'note' | 'occurrence', name: string, body: JsonObject): StoredResource {
  return { kind, name, parent: 'projects/demo', k1: null, k2: null, body, version: 1, createTime: '2030-01-01T00:00:00.000000Z', updateTime: '2030-01-01T00:00:00.000000Z' };
}

describe('noteToWire', () => {
  const note = stored('note', 'projects/demo/notes/n', { kind: 'ATTESTATION', shortDescription: 's', attestation: { hint: { humanReadableName: 'qa' } } });
  it('v1: attestation; v1beta1: attestationAuthority', () => {
    expect(noteToWire(note, 'v1')).toEqual({
      name: 'projects/demo/notes/n',
      shortDescription: 's',
      kind: 'ATTESTATION',
      createTime: '2030-01-01T00:00:00.000000Z',
      updateTime: '2030-01-01T00:00:00.000000Z',
      attestation: { hint: { humanReadableName: 'qa' } },
    });
    const beta = noteToWire(note, 'v1beta1');
    expect(beta['attestationAuthority']).toEqual({ hint: { humanReadableName: 'qa' } });
    expect(beta['attestation']).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------
// Occurrences
// ---------------------------------------------------------------------------------------------

const PAYLOAD = Buffer.from('{"critical":{}}\n');
// Bytes whose base64 uses both alphabet-specific characters (+ and /, - and _ in URL-safe form).
const SIG = Buffer.from([0xfb, 0xff, 0xbf, 0x00, 0x3e, 0x3f, 0xfe]);
/** What gcloud sends for bytes: URL-safe alphabet, with `=` padding. */
const urlSafe = (b: Buffer) => b.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');

describe('readOccurrence and occurrenceDetails', () => {
  it('reads gcloud\'s body and stores standard base64 whatever alphabet was sent', () => {
    const raw = {
      kind: 'ATTESTATION',
      noteName: 'projects/demo/notes/n',
      resourceUri: IMAGE,
      attestation: { serializedPayload: PAYLOAD.toString('base64url'), signatures: [{ publicKeyId: 'k1', signature: urlSafe(SIG) }] },
    };
    const input = readOccurrence(raw);
    expect(input).toMatchObject({ noteName: 'projects/demo/notes/n', resourceUri: IMAGE, declaredKind: 'ATTESTATION', details: { kind: 'ATTESTATION', field: 'attestation' } });
    const d = occurrenceDetails('ATTESTATION', raw.attestation, 'projects/demo/notes/n', IMAGE);
    expect(d).toEqual({ value: { serializedPayload: PAYLOAD.toString('base64'), signatures: [{ signature: SIG.toString('base64'), publicKeyId: 'k1' }] } });
    expect(SIG.toString('base64')).toMatch(/[+/]/);
  });

  it('reads the v1beta1 shape: resource.uri and a PGP attestation kept for v1beta1 reads', () => {
    const raw = {
      resource: { uri: `https://${IMAGE}` },
      note_name: 'projects/demo/notes/n',
      kind: 'ATTESTATION',
      attestation: { attestation: { pgpSignedAttestation: { signature: '-----BEGIN PGP MESSAGE-----\nx\n-----END PGP MESSAGE-----\n', contentType: 'SIMPLE_SIGNING_JSON', pgpKeyId: 'ABCD' } } },
    };
    const input = readOccurrence(raw);
    expect(input.resourceUri).toBe(`https://${IMAGE}`);
    expect(input.noteName).toBe('projects/demo/notes/n');
    const d = occurrenceDetails('ATTESTATION', raw.attestation, 'projects/demo/notes/n', IMAGE);
    expect(d.value).toEqual({ signatures: [{ publicKeyId: 'ABCD', signature: Buffer.from(raw.attestation.attestation.pgpSignedAttestation.signature).toString('base64') }] });
    expect(d.v1beta1).toEqual({ pgpSignedAttestation: raw.attestation.attestation.pgpSignedAttestation });
  });

  it('accepts a JWT-only attestation', () => {
    const d = occurrenceDetails('ATTESTATION', { jwts: [{ compactJwt: 'eyJh.eyJi.c2ln' }] }, 'projects/demo/notes/n', IMAGE);
    expect(d.value).toEqual({ signatures: [], jwts: [{ compactJwt: 'eyJh.eyJi.c2ln' }] });
  });

  const rejected: [Record<string, unknown>, RegExp][] = [
    [{ serializedPayload: 'e30=', signatures: [{ publicKeyId: 'k', signature: 'not base64!' }] }, /occurrence\.attestation\.signatures\[0\]\.signature: not valid base64/],
    [{ serializedPayload: 'e30!', signatures: [{ publicKeyId: 'k', signature: 'AAAA' }] }, /occurrence\.attestation\.serializedPayload: not valid base64/],
    [{ serializedPayload: 'e30=', signatures: [] }, /carries no signature/],
    [{ serializedPayload: 'e30=', signatures: [{ signature: 'AAAA' }] }, /signatures\[0\]\.publicKeyId: empty/],
    [{ attestation: { pgpSignedAttestation: { signature: 'x', pgpKeyId: 'A', contentType: 'JSON' } } }, /contentType "JSON"/],
    [{ jwts: [{ compactJwt: 'nope' }] }, /compactJwt: must be a JWS/],
  ];
  it.each(rejected)('refuses undecodable attestation details %j', (details, message) => {
    const e = apiError(() => occurrenceDetails('ATTESTATION', details, 'projects/demo/notes/n', IMAGE));
    expect(e.status).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(message);
  });

  it('rejects unknown fields and contradicting kinds', () => {
    expect(apiError(() => readOccurrence({ resourceUrl: 'x' })).message).toMatch(/Unknown name "resourceUrl" at 'occurrence'/);
    expect(apiError(() => readOccurrence({ kind: 'BUILD', attestation: {} })).message).toMatch(/BUILD does not match the occurrence's details, which are ATTESTATION/);
    expect(apiError(() => readOccurrence({ attestation: {}, build: {} })).message).toMatch(/one type/);
  });
});

describe('occurrenceToWire', () => {
  const body: JsonObject = {
    name: 'projects/demo/occurrences/o1',
    resourceUri: IMAGE,
    noteName: 'projects/demo/notes/n',
    kind: 'ATTESTATION',
    // Stored in URL-safe form (as an older writer might have): always served as standard base64.
    attestation: { serializedPayload: PAYLOAD.toString('base64url'), signatures: [{ signature: SIG.toString('base64url'), publicKeyId: 'k1' }] },
  };
  const r = stored('occurrence', 'projects/demo/occurrences/o1', body);

  it('v1', () => {
    expect(occurrenceToWire(r, 'v1')).toEqual({
      name: 'projects/demo/occurrences/o1',
      resourceUri: IMAGE,
      noteName: 'projects/demo/notes/n',
      kind: 'ATTESTATION',
      createTime: '2030-01-01T00:00:00.000000Z',
      updateTime: '2030-01-01T00:00:00.000000Z',
      attestation: { serializedPayload: PAYLOAD.toString('base64'), signatures: [{ signature: SIG.toString('base64'), publicKeyId: 'k1' }] },
    });
  });

  it('v1beta1: resource.uri and genericSignedAttestation', () => {
    const w = occurrenceToWire(r, 'v1beta1');
    expect(w['resource']).toEqual({ uri: IMAGE });
    expect(w['resourceUri']).toBeUndefined();
    expect(w['attestation']).toEqual({
      attestation: {
        genericSignedAttestation: { contentType: 'SIMPLE_SIGNING_JSON', serializedPayload: PAYLOAD.toString('base64'), signatures: [{ signature: SIG.toString('base64'), publicKeyId: 'k1' }] },
      },
    });
  });

  it('v1beta1 PGP form comes back as written; the internal memo never reaches the wire', () => {
    const pgp = { signature: '-----BEGIN PGP MESSAGE-----', contentType: 'SIMPLE_SIGNING_JSON', pgpKeyId: 'ABCD' };
    const withForm = stored('occurrence', 'projects/demo/occurrences/o2', { ...body, tollgateV1beta1Form: { pgpSignedAttestation: pgp } });
    expect(occurrenceToWire(withForm, 'v1beta1')['attestation']).toEqual({ attestation: { pgpSignedAttestation: pgp } });
    expect(JSON.stringify(occurrenceToWire(withForm, 'v1'))).not.toMatch(/tollgate/);
  });
});

describe('listAttestationOccurrences', () => {
  let dir: string;
  let store: Store;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-'));
    store = await openStore(join(dir, 'test.db'));
    const add = (name: string, note: string, digest: string, kind = 'ATTESTATION') =>
      store.create({ kind: 'occurrence', name, parent: name.split('/').slice(0, 2).join('/'), k1: note, k2: digest, body: { kind, noteName: note } });
    await add('projects/a/occurrences/1', 'projects/demo/notes/n', DIGEST);
    await add('projects/b/occurrences/2', 'projects/demo/notes/n', DIGEST);
    await add('projects/a/occurrences/3', 'projects/demo/notes/n', OTHER_DIGEST);
    await add('projects/a/occurrences/4', 'projects/demo/notes/other', DIGEST);
    await add('projects/a/occurrences/5', 'projects/demo/notes/n', DIGEST, 'BUILD');
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the attestations of one note for one digest, across projects', async () => {
    const rows = await listAttestationOccurrences(store, 'projects/demo/notes/n', DIGEST);
    expect(rows.map((r) => r.name)).toEqual(['projects/a/occurrences/1', 'projects/b/occurrences/2']);
    expect((await listAttestationOccurrences(store, 'projects/demo/notes/n', DIGEST.toUpperCase().replace('SHA256', 'sha256'))).length).toBe(2);
    expect(await listAttestationOccurrences(store, 'projects/demo/notes/none', DIGEST)).toEqual([]);
  });

  it('finds those of several digests in one call, by digest as given, whatever limit the query had', async () => {
    const upper = DIGEST.toUpperCase().replace('SHA256', 'sha256');
    const none = `sha256:${'0'.repeat(64)}`;
    const expected = [
      [DIGEST, ['projects/a/occurrences/1', 'projects/b/occurrences/2']],
      [upper, ['projects/a/occurrences/1', 'projects/b/occurrences/2']],
      [OTHER_DIGEST, ['projects/a/occurrences/3']],
      [none, []],
    ];
    // limit 1 and 2 stop the query inside a digest's rows or before a digest: those are read again.
    for (const limit of [1, 2, 3, 1000]) {
      const found = await listAttestationOccurrencesOf(store, 'projects/demo/notes/n', [DIGEST, upper, OTHER_DIGEST, none], limit);
      expect([...found].map(([d, rows]) => [d, rows.map((r) => r.name)]), `limit ${limit}`).toEqual(expected);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// REST, through a real server
// ---------------------------------------------------------------------------------------------

describe('Container Analysis REST', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const attestation = (sig = urlSafe(SIG)) => ({
    kind: 'ATTESTATION',
    noteName: 'projects/demo/notes/n1',
    resourceUri: IMAGE,
    attestation: { serializedPayload: urlSafe(PAYLOAD), signatures: [{ publicKeyId: 'urn:k1', signature: sig }] },
  });

  it('creates a note with the tutorials\' trailing slash and snake_case body; a second create is ALREADY_EXISTS', async () => {
    const body = { name: 'projects/demo/notes/n1', attestation: { hint: { human_readable_name: 'Attestor for secure Flask app' } } };
    const r = await server.request('POST', '/v1/projects/demo/notes/?noteId=n1', body);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'projects/demo/notes/n1', kind: 'ATTESTATION', attestation: { hint: { humanReadableName: 'Attestor for secure Flask app' } } });
    expect(r.body.createTime).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    const again = await server.request('POST', '/v1/projects/demo/notes?noteId=n1', body);
    expect(again.status).toBe(409);
    expect(again.body.error.status).toBe('ALREADY_EXISTS');
    const noId = await server.request('POST', '/v1/projects/demo/notes', body);
    expect(noId.status).toBe(400);
    expect(noId.body.error.message).toMatch(/noteId: required/);
  });

  it('gets a note through v1 and v1beta1', async () => {
    const v1 = await server.request('GET', '/v1/projects/demo/notes/n1');
    expect(v1.status).toBe(200);
    expect(v1.body.attestation).toEqual({ hint: { humanReadableName: 'Attestor for secure Flask app' } });
    const beta = await server.request('GET', '/v1beta1/projects/demo/notes/n1');
    expect(beta.body.attestationAuthority).toEqual({ hint: { humanReadableName: 'Attestor for secure Flask app' } });
    expect(beta.body.attestation).toBeUndefined();
    const missing = await server.request('GET', '/v1/projects/demo/notes/nope');
    expect(missing.status).toBe(404);
  });

  it('lists notes in pages', async () => {
    for (const id of ['p1', 'p2', 'p3', 'p4']) {
      const r = await server.request('POST', `/v1/projects/paging/notes?noteId=${id}`, { attestation: { hint: { humanReadableName: id } } });
      expect(r.status).toBe(200);
    }
    const seen: string[] = [];
    let token = '';
    for (let i = 0; i < 5; i++) {
      const r = await server.request('GET', `/v1/projects/paging/notes?pageSize=3${token ? `&pageToken=${token}` : ''}`);
      expect(r.status).toBe(200);
      seen.push(...r.body.notes.map((n: { name: string }) => n.name));
      if (!r.body.nextPageToken) break;
      token = r.body.nextPageToken;
    }
    expect(seen).toEqual(['p1', 'p2', 'p3', 'p4'].map((id) => `projects/paging/notes/${id}`));
    const kind = await server.request('GET', '/v1/projects/paging/notes?filter=kind%3D%22BUILD%22');
    expect(kind.body.notes).toEqual([]);
    const bad = await server.request('GET', '/v1/projects/paging/notes?filter=shortDescription%3D%22x%22');
    expect(bad.status).toBe(400);
  });

  it('patches only the fields in updateMask; kind cannot change', async () => {
    const r = await server.request('PATCH', '/v1/projects/paging/notes/p1?updateMask=shortDescription,attestation.hint.human_readable_name', {
      shortDescription: 'new',
      longDescription: 'not in the mask',
      attestation: { hint: { humanReadableName: 'renamed' } },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ shortDescription: 'new', attestation: { hint: { humanReadableName: 'renamed' } } });
    expect(r.body.longDescription).toBeUndefined();
    const kind = await server.request('PATCH', '/v1/projects/paging/notes/p1', { build: {} });
    expect(kind.status).toBe(400);
    expect(kind.body.error.message).toMatch(/kind of a note cannot change/);
  });

  it('sets the note IAM policy from the codelab\'s single-quoted request and reads it back', async () => {
    const request = `{
'resource': 'projects/demo/notes/n1',
'policy': {
'bindings': [
{
'role': 'roles/containeranalysis.notes.occurrences.viewer',
'members': [
'serviceAccount:service-123@gcp-sa-binaryauthorization.iam.gserviceaccount.com'
]
}
]
}
}`;
    const set = await server.request('POST', '/v1/projects/demo/notes/n1:setIamPolicy', request);
    expect(set.status).toBe(200);
    expect(set.body.bindings).toEqual([{ role: 'roles/containeranalysis.notes.occurrences.viewer', members: ['serviceAccount:service-123@gcp-sa-binaryauthorization.iam.gserviceaccount.com'] }]);
    const get = await server.request('POST', '/v1/projects/demo/notes/n1:getIamPolicy', { options: { requestedPolicyVersion: 3 } });
    expect(get.status).toBe(200);
    expect(get.body.bindings).toEqual(set.body.bindings);
    const missing = await server.request('POST', '/v1/projects/demo/notes/nope:getIamPolicy', {});
    expect(missing.status).toBe(404);
  });

  it('refuses an occurrence on a missing note, naming the note', async () => {
    const r = await server.request('POST', '/v1/projects/demo/occurrences', { ...attestation(), noteName: 'projects/demo/notes/missing' });
    expect(r.status).toBe(404);
    expect(r.body.error.message).toMatch(/projects\/demo\/notes\/missing/);
  });

  it('refuses undecodable signature bytes with the field path', async () => {
    const r = await server.request('POST', '/v1/projects/demo/occurrences', attestation('%%%'));
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/occurrence\.attestation\.signatures\[0\]\.signature: not valid base64/);
    const noUri = await server.request('POST', '/v1/projects/demo/occurrences', { ...attestation(), resourceUri: undefined });
    expect(noUri.status).toBe(400);
    expect(noUri.body.error.message).toMatch(/resourceUri: required/);
  });

  let created: string;
  it('creates an attestation occurrence as gcloud sends it and serves it back in standard base64', async () => {
    const r = await server.request('POST', '/v1/projects/attest/occurrences', attestation());
    expect(r.status).toBe(200);
    expect(r.body.name).toMatch(/^projects\/attest\/occurrences\/[0-9a-f-]{36}$/);
    expect(r.body).toMatchObject({
      kind: 'ATTESTATION',
      noteName: 'projects/demo/notes/n1',
      resourceUri: IMAGE,
      attestation: { serializedPayload: PAYLOAD.toString('base64'), signatures: [{ publicKeyId: 'urn:k1', signature: SIG.toString('base64') }] },
    });
    created = r.body.name;
    const got = await server.request('GET', `/v1/${created}`);
    expect(got.body).toEqual(r.body);
  });

  it('lists a note\'s occurrences with gcloud\'s exact filters', async () => {
    const other = await server.request('POST', '/v1/projects/demo/occurrences', { ...attestation(), resourceUri: `https://gcr.io/demo/other@${OTHER_DIGEST}` });
    expect(other.status).toBe(200);
    const q = (filter: string) => `/v1/projects/demo/notes/n1/occurrences?filter=${encodeURIComponent(filter)}&pageSize=100&alt=json`;
    const byDigest = await server.request('GET', q(`has_suffix(resourceUrl, "${DIGEST}")`));
    expect(byDigest.status).toBe(200);
    expect(byDigest.body.occurrences.map((o: { name: string }) => o.name)).toEqual([created]);
    expect(byDigest.body.occurrences[0].kind).toBe('ATTESTATION');
    const all = await server.request('GET', q(''));
    expect(all.body.occurrences.map((o: { name: string }) => o.name).sort()).toEqual([created, other.body.name].sort());
    const docs = await server.request('GET', `/v1/projects/attest/occurrences?filter=${encodeURIComponent(`kind="ATTESTATION" AND resourceUrl="https://${IMAGE}"`)}`);
    expect(docs.body.occurrences.map((o: { name: string }) => o.name)).toEqual([created]);
    const unsupported = await server.request('GET', q('resourceUrl~"x"'));
    expect(unsupported.status).toBe(400);
    expect(unsupported.body.error.message).toMatch(/unsupported expression `resourceUrl~"x"`/);
  });

  it('serves gcloud attestations create and list --artifact-url (the has_suffix filter) end to end', async () => {
    const attestor = await server.request('POST', '/v1/projects/demo/attestors?attestorId=gc', { userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/n1' } });
    expect(attestor.status).toBe(200);
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-ca-gcloud-'));
    try {
      writeFileSync(join(dir, 'payload.json'), PAYLOAD);
      writeFileSync(join(dir, 'sig'), SIG);
      const create = await server.gcloud([
        'container', 'binauthz', 'attestations', 'create', `--artifact-url=https://${IMAGE}`, '--attestor=projects/demo/attestors/gc',
        `--signature-file=${join(dir, 'sig')}`, '--public-key-id=urn:gcloud', `--payload-file=${join(dir, 'payload.json')}`,
      ]);
      expect(create.code, create.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const list = await server.gcloud(['container', 'binauthz', 'attestations', 'list', '--attestor=gc', '--attestor-project=demo', `--artifact-url=${IMAGE}`, '--format=json']);
    expect(list.code, list.stderr).toBe(0);
    const items = JSON.parse(list.stdout) as { resourceUri: string; kind: string; attestation: { signatures: { publicKeyId: string; signature: string }[] } }[];
    expect(items.length).toBeGreaterThanOrEqual(2);
    for (const o of items) expect(o.resourceUri.endsWith(DIGEST)).toBe(true);
    const mine = items.find((o) => o.attestation.signatures[0]?.publicKeyId === 'urn:gcloud');
    expect(mine).toMatchObject({ kind: 'ATTESTATION', resourceUri: IMAGE });
    // gcloud prints bytes in its own (URL-safe) alphabet: compare the bytes.
    expect(Buffer.from(mine?.attestation.signatures[0]?.signature ?? '', 'base64')).toEqual(SIG);
    const other = await server.gcloud(['container', 'binauthz', 'attestations', 'list', '--attestor=gc', '--attestor-project=demo', `--artifact-url=gcr.io/demo/x@${OTHER_DIGEST}`, '--format=json']);
    expect(other.code, other.stderr).toBe(0);
    expect((JSON.parse(other.stdout) as { resourceUri: string }[]).map((o) => o.resourceUri)).toEqual([`https://gcr.io/demo/other@${OTHER_DIGEST}`]);
    expect((await server.request('DELETE', '/v1/projects/demo/attestors/gc')).status).toBe(200);
  });

  it('patches an occurrence\'s remediation; the note and resource stay', async () => {
    const r = await server.request('PATCH', `/v1/${created}?updateMask=remediation`, { remediation: 'rebuild', resourceUri: 'ignored-not-in-mask' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ remediation: 'rebuild', resourceUri: IMAGE });
    const immutable = await server.request('PATCH', `/v1/${created}?updateMask=noteName`, { noteName: 'projects/demo/notes/other' });
    expect(immutable.status).toBe(400);
    expect(immutable.body.error.message).toMatch(/noteName: immutable/);
  });

  it('serves the projects/*/locations/* form of the v1 paths', async () => {
    const r = await server.request('POST', '/v1/projects/demo/locations/us-central1/notes?noteId=regional', { attestation: {} });
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('projects/demo/locations/us-central1/notes/regional');
    const list = await server.request('GET', '/v1/projects/demo/locations/us-central1/notes');
    expect(list.body.notes.map((n: { name: string }) => n.name)).toEqual(['projects/demo/locations/us-central1/notes/regional']);
  });

  it('reads and writes the v1beta1 shapes, and deletes through v1beta1', async () => {
    const armored = '-----BEGIN PGP MESSAGE-----\n\nowGbwMvMwMGYo\n-----END PGP MESSAGE-----\n';
    const r = await server.request('POST', '/v1beta1/projects/demo/occurrences', {
      resource: { uri: `https://${IMAGE}` },
      noteName: 'projects/demo/notes/n1',
      kind: 'ATTESTATION',
      attestation: { attestation: { pgpSignedAttestation: { signature: armored, contentType: 'SIMPLE_SIGNING_JSON', pgpKeyId: 'ABCDEF' } } },
    });
    expect(r.status).toBe(200);
    expect(r.body.resource).toEqual({ uri: `https://${IMAGE}` });
    expect(r.body.attestation).toEqual({ attestation: { pgpSignedAttestation: { signature: armored, contentType: 'SIMPLE_SIGNING_JSON', pgpKeyId: 'ABCDEF' } } });
    const v1 = await server.request('GET', `/v1/${r.body.name}`);
    expect(v1.body.resourceUri).toBe(`https://${IMAGE}`);
    expect(v1.body.attestation).toEqual({ signatures: [{ publicKeyId: 'ABCDEF', signature: Buffer.from(armored).toString('base64') }] });
    const generic = await server.request('GET', `/v1beta1/${created}`);
    expect(generic.body.attestation.attestation.genericSignedAttestation.signatures).toEqual([{ publicKeyId: 'urn:k1', signature: SIG.toString('base64') }]);

    const del = await server.request('DELETE', `/v1beta1/${r.body.name}`);
    expect(del.status).toBe(200);
    expect(del.body).toEqual({});
    expect((await server.request('GET', `/v1/${r.body.name}`)).status).toBe(404);
    expect((await server.request('DELETE', `/v1beta1/${r.body.name}`)).status).toBe(404);
  });

  it('refuses to delete a note an attestor uses, naming the attestor', async () => {
    const note = await server.request('POST', '/v1/projects/demo/notes?noteId=held', { attestation: { hint: { humanReadableName: 'held' } } });
    expect(note.status).toBe(200);
    const attestor = await server.request('POST', '/v1/projects/demo/attestors?attestorId=holder', { userOwnedGrafeasNote: { noteReference: 'projects/demo/notes/held' } });
    expect(attestor.status).toBe(200);
    const refused = await server.request('DELETE', '/v1/projects/demo/notes/held');
    expect(refused.status).toBe(400);
    expect(refused.body.error.status).toBe('FAILED_PRECONDITION');
    expect(refused.body.error.message).toMatch(/projects\/demo\/attestors\/holder/);
    expect((await server.request('DELETE', '/v1/projects/demo/attestors/holder')).status).toBe(200);
    expect((await server.request('DELETE', '/v1/projects/demo/notes/held')).status).toBe(200);
    expect((await server.request('GET', '/v1/projects/demo/notes/held')).status).toBe(404);
  });

  it('checks IAM before existence; attaching needs attachOccurrence on the note as well', async () => {
    const email = 'attacher@demo.iam.gserviceaccount.com';
    expect((await server.request('POST', '/tollgate/v1/principals', { email, type: 'serviceAccount' })).status).toBe(200);
    const tok = await server.request('POST', '/tollgate/v1/tokens', { principal: email });
    expect(tok.status).toBe(200);
    const token = tok.body.secret as string;

    const existing = await server.request('GET', '/v1/projects/demo/notes/n1', undefined, token);
    const missing = await server.request('GET', '/v1/projects/demo/notes/nope', undefined, token);
    expect(existing.status).toBe(403);
    expect(missing.status).toBe(403);
    expect(missing.body.error.message.replace('nope', 'n1')).toBe(existing.body.error.message);

    // occurrences.editor on the project is not enough without notes.attacher on the note.
    const policy = await server.request('POST', '/v1/projects/demo:getIamPolicy', {});
    const grant = await server.request('POST', '/v1/projects/demo:setIamPolicy', {
      policy: { ...policy.body, bindings: [...(policy.body.bindings ?? []), { role: 'roles/containeranalysis.occurrences.editor', members: [`serviceAccount:${email}`] }] },
    });
    expect(grant.status).toBe(200);
    const denied = await server.request('POST', '/v1/projects/demo/occurrences', attestation(), token);
    expect(denied.status).toBe(403);
    expect(denied.body.error.message).toMatch(/containeranalysis\.notes\.attachOccurrence/);
    const notePolicy = await server.request('POST', '/v1/projects/demo/notes/n1:getIamPolicy', {});
    const attach = await server.request('POST', '/v1/projects/demo/notes/n1:setIamPolicy', {
      policy: { ...notePolicy.body, bindings: [...(notePolicy.body.bindings ?? []), { role: 'roles/containeranalysis.notes.attacher', members: [`serviceAccount:${email}`] }] },
    });
    expect(attach.status).toBe(200);
    const ok = await server.request('POST', '/v1/projects/demo/occurrences', attestation(), token);
    expect(ok.status).toBe(200);
    // …but listing the note's occurrences needs notes.listOccurrences, which neither role grants.
    expect((await server.request('GET', '/v1/projects/demo/notes/n1/occurrences', undefined, token)).status).toBe(403);
  });

  it('records Admin Activity for every write', () => {
    // Read the server's own audit table (the logging API is another router's concern).
    const db = new Database(join(server.dataDir, 'tollgate.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare("select entry from audit_log where project in ('demo', 'attest', 'paging')").all() as { entry: string }[];
      const entries = rows.map((r) => JSON.parse(r.entry) as { protoPayload: { serviceName: string; methodName: string; resourceName: string } });
      const methods = new Set(entries.filter((e) => e.protoPayload.serviceName === 'containeranalysis.googleapis.com').map((e) => e.protoPayload.methodName));
      expect([...methods].sort()).toEqual([
        'grafeas.v1.Grafeas.CreateNote',
        'grafeas.v1.Grafeas.CreateOccurrence',
        'grafeas.v1.Grafeas.DeleteNote',
        'grafeas.v1.Grafeas.SetIamPolicy',
        'grafeas.v1.Grafeas.UpdateNote',
        'grafeas.v1.Grafeas.UpdateOccurrence',
        'grafeas.v1beta1.GrafeasV1Beta1.CreateOccurrence',
        'grafeas.v1beta1.GrafeasV1Beta1.DeleteOccurrence',
      ]);
      const deleted = entries.find((e) => e.protoPayload.methodName === 'grafeas.v1.Grafeas.DeleteNote');
      expect(deleted?.protoPayload.resourceName).toBe('projects/demo/notes/held');
    } finally {
      db.close();
    }
  });
});
