/**
 * Puts the bench's evidence into a Tollgate store.
 *
 * The small, shaped-by-the-API part goes through the real APIs of a running server: the note,
 * the attestor with its key, the policy, and the attestations of the warm images. The bulk (the
 * cold pool: one attestation per new image; the background of scenario c: 1 000 attestors and
 * 100 000 attestations) is written straight into the store with `openStore` from dist, in
 * transactions, while no server runs — in exactly the shape the APIs store (checked: the rows the
 * APIs wrote are rebuilt here and compared, so a change of the stored shape fails the bench
 * instead of silently measuring something else).
 *
 * Every attestation is real: a gcloud-identical signature payload (Tollgate's own
 * create-signature-payload) signed with ECDSA P-256 / SHA-256 by a key made with openssl.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { JsonObject, NewResource, Store, StoredResource } from '../src/server/store/store.js';
import { ATTESTOR, KEY_ID, NOTE, PROJECT } from './workload.js';

export interface SigningKey {
  readonly keyId: string;
  readonly publicKeyPem: string;
  readonly privateKey: KeyObject;
}

/** One attestation, ready to be stored. */
export interface Attestation {
  readonly image: string;
  readonly note: string;
  readonly payloadB64: string;
  readonly signatureB64: string;
  readonly keyId: string;
}

export interface Dist {
  openStore(url: string): Promise<Store>;
  createSignaturePayload(url: string): { ok: true; value: string } | { ok: false; error: unknown };
  ensureWebhookCertificates(dir: string, names: readonly string[]): Promise<{ caPem: string; certPem: string; keyPem: string }>;
}

export async function loadDist(root: string): Promise<Dist> {
  const load = async (path: string) => (await import(pathToFileURL(join(root, 'dist', path)).href)) as Record<string, unknown>;
  const store = await load('server/store/sql-store.js');
  const payload = await load('core/attestation/payload.js');
  const tls = await load('server/webhook/tls.js');
  return {
    openStore: store['openStore'] as Dist['openStore'],
    createSignaturePayload: payload['createSignaturePayload'] as Dist['createSignaturePayload'],
    ensureWebhookCertificates: tls['ensureWebhookCertificates'] as Dist['ensureWebhookCertificates'],
  };
}

/** The build attestor's key: made by the openssl binary when there is one (as the README does). */
export function buildKey(dir: string): SigningKey {
  let privateKey: KeyObject;
  try {
    const pem = execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout'], { cwd: dir, encoding: 'utf8' });
    privateKey = createPrivateKey(pem);
  } catch {
    privateKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
  }
  return { keyId: KEY_ID, privateKey, publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString() };
}

function teamKey(i: number): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return { keyId: `//cloudkms.googleapis.com/v1/projects/${PROJECT}/locations/global/keyRings/bench/cryptoKeys/team-${i}/cryptoKeyVersions/1`, privateKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export function attest(dist: Dist, image: string, note: string, key: SigningKey): Attestation {
  const payload = dist.createSignaturePayload(image);
  if (!payload.ok) throw new Error(`cannot make a signature payload for ${image}`);
  const bytes = Buffer.from(payload.value, 'utf8');
  return { image, note, keyId: key.keyId, payloadB64: bytes.toString('base64'), signatureB64: sign('sha256', bytes, key.privateKey).toString('base64') };
}

// ---------------------------------------------------------------------------------------------
// Rows in the shape the APIs store them (src/server/api/containeranalysis.ts: kind `occurrence`,
// parent `projects/P`, k1 = note name, k2 = image digest; binaryauthorization.ts: kind
// `attestor`, k1 = note reference).

const digestOfImage = (image: string): string => (image.slice(image.indexOf('@') + 1)).toLowerCase();

function occurrenceRow(a: Attestation, name = `projects/${PROJECT}/occurrences/${randomUUID()}`): NewResource {
  return {
    kind: 'occurrence',
    name,
    parent: `projects/${PROJECT}`,
    k1: a.note,
    k2: digestOfImage(a.image),
    body: {
      name,
      resourceUri: a.image,
      noteName: a.note,
      kind: 'ATTESTATION',
      attestation: { serializedPayload: a.payloadB64, signatures: [{ signature: a.signatureB64, publicKeyId: a.keyId }] },
    },
  };
}

function noteRow(name: string, title: string): NewResource {
  return { kind: 'note', name, parent: `projects/${PROJECT}`, body: { kind: 'ATTESTATION', attestation: { hint: { humanReadableName: title } } } };
}

function attestorRow(name: string, note: string, key: SigningKey, delegation: string): NewResource {
  return {
    kind: 'attestor',
    name,
    parent: `projects/${PROJECT}`,
    k1: note,
    body: {
      name,
      userOwnedGrafeasNote: {
        noteReference: note,
        publicKeys: [{ id: key.keyId, pkixPublicKey: { publicKeyPem: key.publicKeyPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }],
        delegationServiceAccountEmail: delegation,
      },
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Through the API

async function api(url: string, token: string, method: string, path: string, body: unknown): Promise<JsonObject> {
  const r = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method} ${path}: HTTP ${r.status} ${text.slice(0, 500)}`);
  return JSON.parse(text) as JsonObject;
}

/** Note, attestor, policy and the warm images' attestations, through the running server's APIs. */
export async function seedThroughApi(server: { url: string; adminToken: string }, key: SigningKey, warm: readonly Attestation[]): Promise<void> {
  const call = (method: string, path: string, body: unknown) => api(server.url, server.adminToken, method, path, body);
  await call('POST', `/v1/projects/${PROJECT}/notes?noteId=build`, { attestation: { hint: { humanReadableName: 'build' } } });
  await call('POST', `/v1/projects/${PROJECT}/attestors?attestorId=build`, {
    userOwnedGrafeasNote: { noteReference: NOTE, publicKeys: [{ id: key.keyId, pkixPublicKey: { publicKeyPem: key.publicKeyPem, signatureAlgorithm: 'ECDSA_P256_SHA256' } }] },
  });
  for (const a of warm) {
    await call('POST', `/v1/projects/${PROJECT}/occurrences`, {
      kind: 'ATTESTATION',
      noteName: a.note,
      resourceUri: a.image,
      attestation: { serializedPayload: a.payloadB64, signatures: [{ publicKeyId: a.keyId, signature: a.signatureB64 }] },
    });
  }
  await call('PUT', `/v1/projects/${PROJECT}/policy`, {
    globalPolicyEvaluationMode: 'ENABLE',
    defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [ATTESTOR] },
  });
}

// ---------------------------------------------------------------------------------------------
// Straight into the store

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function sameRow(what: string, stored: StoredResource | undefined, built: NewResource): void {
  if (stored === undefined) throw new Error(`bench seeding: the API did not store ${what}`);
  const a = canonical({ parent: stored.parent, k1: stored.k1, k2: stored.k2, body: stored.body });
  const b = canonical({ parent: built.parent, k1: built.k1 ?? null, k2: built.k2 ?? null, body: built.body });
  if (a !== b) {
    throw new Error(`bench seeding: the stored shape of ${what} changed; update bench/seed.ts to write what the API writes.\nAPI:   ${a}\nbench: ${b}`);
  }
}

/** Rebuilds the rows the APIs wrote and compares: the bulk rows below are written the same way. */
export async function checkShapes(store: Store, key: SigningKey, sample: Attestation): Promise<{ delegation: string }> {
  const attestor = await store.get('attestor', ATTESTOR);
  const delegation = String(((attestor?.body['userOwnedGrafeasNote'] ?? {}) as JsonObject)['delegationServiceAccountEmail']);
  sameRow('an attestor', attestor, attestorRow(ATTESTOR, NOTE, key, delegation));
  sameRow('a note', await store.get('note', NOTE), noteRow(NOTE, 'build'));
  const [occurrence] = await store.list('occurrence', { k1: NOTE, k2: digestOfImage(sample.image), limit: 1 });
  sameRow('an occurrence', occurrence, occurrenceRow(sample, occurrence?.name));
  return { delegation };
}

async function insertAll(store: Store, rows: Iterable<NewResource>, batch = 2_000): Promise<number> {
  let pending: NewResource[] = [];
  let n = 0;
  const flush = async () => {
    const chunk = pending;
    pending = [];
    await store.transaction(async (tx) => {
      for (const r of chunk) await tx.create(r);
    });
    n += chunk.length;
  };
  for (const r of rows) {
    pending.push(r);
    if (pending.length >= batch) await flush();
  }
  if (pending.length > 0) await flush();
  return n;
}

export async function insertAttestations(store: Store, attestations: readonly Attestation[]): Promise<number> {
  return insertAll(store, (function* () {
    for (const a of attestations) yield occurrenceRow(a);
  })());
}

export interface Background {
  readonly attestors: number;
  readonly attestations: readonly Attestation[];
  readonly keys: readonly SigningKey[];
}

/**
 * The background of scenario c: `attestors` attestors in all (the build attestor and
 * attestors - 1 team attestors, each with its own note and key) and `count` attestations on
 * images nobody asks about — half on the build attestor's note (one CI attestor signs most
 * images), the rest spread over the team notes.
 */
export function makeBackground(dist: Dist, buildKey: SigningKey, attestors: number, count: number, image: (j: number) => string): Background {
  const keys = Array.from({ length: attestors - 1 }, (_, i) => teamKey(i));
  const attestations: Attestation[] = [];
  for (let j = 0; j < count; j++) {
    const team = j % 2 === 0 || keys.length === 0 ? undefined : (j >> 1) % keys.length;
    attestations.push(team === undefined ? attest(dist, image(j), NOTE, buildKey) : attest(dist, image(j), teamNote(team), keys[team] as SigningKey));
  }
  return { attestors, attestations, keys };
}

const teamNote = (i: number) => `projects/${PROJECT}/notes/team-${i}`;

export async function insertBackground(store: Store, bg: Background, delegation: string): Promise<void> {
  await insertAll(store, (function* () {
    for (const [i, key] of bg.keys.entries()) {
      yield noteRow(teamNote(i), `team ${i}`);
      yield attestorRow(`projects/${PROJECT}/attestors/team-${i}`, teamNote(i), key, delegation);
    }
  })());
  await insertAttestations(store, bg.attestations);
}

/**
 * What an operator does after a bulk import into PostgreSQL: `VACUUM (ANALYZE)` the resources,
 * so the rows get their hint bits and visibility map and the planner its statistics before the
 * server takes load. Left to autovacuum, that pass starts within a minute, in the middle of a
 * measured scenario, and on this machine's disk every lookup then waited on its I/O: (c) fell to
 * 16–24 reviews/s in two runs. SQLite has no such pass.
 */
export async function settleAfterBulkLoad(database: { postgresUrl?: string }): Promise<void> {
  if (database.postgresUrl === undefined) return;
  const client = new pg.Client({ connectionString: database.postgresUrl });
  await client.connect();
  try {
    await client.query('vacuum (analyze) resources');
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// Audit rows (decision entries are written behind the answer; the bench checks they all landed)

export async function countAuditRows(database: { sqliteFile?: string; postgresUrl?: string }): Promise<number> {
  if (database.sqliteFile !== undefined) {
    const db = new Database(database.sqliteFile, { fileMustExist: true });
    try {
      return Number((db.prepare('select count(*) as n from audit_log').get() as { n: number }).n);
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: database.postgresUrl });
  await client.connect();
  try {
    const r = await client.query<{ n: string }>('select count(*) as n from audit_log');
    return Number(r.rows[0]?.n ?? 0);
  } finally {
    await client.end();
  }
}
