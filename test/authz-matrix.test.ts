/**
 * The authorization matrix: every method the server serves, called by principals holding no role,
 * an unrelated role, a near-miss role of the same service, and the smallest Google role that grants
 * the method, on the project and (for attestors, notes, occurrences, keys and the policy) on the
 * resource itself. Plus authentication (no, unknown, expired, revoked token), errors that must not
 * reveal whether a resource exists, testIamPermissions, what each documented role holds, Tollgate's
 * superuser-only methods, and the multi-project setup of reference §7.5.
 *
 * The expectations are written by hand from Google's documentation as shared/binauthz-reference.md
 * §7 (7.1–7.5) records it, and, for the APIs §7 does not cover (Resource Manager, Service Usage, the
 * KMS viewer/admin roles), from Google's IAM role pages. Nothing is derived from src/server/iam:
 * this file is an independent check of it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCaller,
  expectDenied,
  expectForbidden,
  expectOk,
  expectUnauthenticated,
  grant,
  iamMethodsOf,
  readPolicy,
  rewritePolicyRequest,
  roleSlug,
  send,
  type Body,
  type Caller,
  type Req,
  type Res,
} from './support/authz.js';
import { startServer, type TestServer } from './support/server.js';

let server: TestServer;

// ---------------------------------------------------------------------------------------------
// Fixtures (made by the bootstrap admin)

const P = 'demo';
const PROJECT = `projects/${P}`;
const POLICY = `${PROJECT}/policy`;
const NOTE = `${PROJECT}/notes/base-note`;
const ATTESTOR = `${PROJECT}/attestors/base-attestor`;
const LOCATION = `${PROJECT}/locations/global`;
const RING = `${LOCATION}/keyRings/base-ring`;
const KEY = `${RING}/cryptoKeys/base-key`;
const VERSION = `${KEY}/cryptoKeyVersions/1`;
const REGIONAL_NOTE = `${PROJECT}/locations/us/notes/regional-note`;
const IMAGE = `us-docker.pkg.dev/demo/apps/web@sha256:${'ab'.repeat(32)}`;
/** Set in beforeAll: the occurrence on NOTE that read-only rows use. */
let OCCURRENCE = '';

const ATTESTATION_NOTE = { attestation: { hint: { humanReadableName: 'authz matrix' } } };
const SIGNING_KEY = { purpose: 'ASYMMETRIC_SIGN', versionTemplate: { algorithm: 'EC_SIGN_P256_SHA256' } };
const ALLOW_ALL_POLICY = { globalPolicyEvaluationMode: 'ENABLE', defaultAdmissionRule: { evaluationMode: 'ALWAYS_ALLOW', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG' } };
const ATTESTATION = { serializedPayload: Buffer.from('{}').toString('base64'), signatures: [{ publicKeyId: 'urn:example:key', signature: 'AAAA' }] };
const SHA256_DIGEST = { digest: { sha256: Buffer.alloc(32, 7).toString('base64') } };

function attestorBody(note: string, version = 'v1'): Body {
  return { [version === 'v1' ? 'userOwnedGrafeasNote' : 'userOwnedDrydockNote']: { noteReference: note }, description: 'authz matrix' };
}

function occurrenceBody(note: string): Body {
  return { kind: 'ATTESTATION', noteName: note, resourceUri: IMAGE, attestation: ATTESTATION };
}

let seq = 0;
function uid(prefix: string): string {
  seq += 1;
  return `${prefix}-${seq}`;
}

async function asAdmin(req: Req): Promise<Body> {
  const r = await send(server, req, server.adminToken);
  expect(r.status, `${req.method} ${req.path} as admin: ${JSON.stringify(r.body)}`).toBe(200);
  return r.body;
}

async function newNote(project = P): Promise<string> {
  const id = uid('note');
  await asAdmin({ method: 'POST', path: `/v1/projects/${project}/notes?noteId=${id}`, body: ATTESTATION_NOTE });
  return `projects/${project}/notes/${id}`;
}

async function newAttestor(project = P, note = NOTE): Promise<string> {
  const id = uid('attestor');
  await asAdmin({ method: 'POST', path: `/v1/projects/${project}/attestors?attestorId=${id}`, body: attestorBody(note) });
  return `projects/${project}/attestors/${id}`;
}

async function newOccurrence(note = NOTE): Promise<string> {
  const b = await asAdmin({ method: 'POST', path: `/v1/${PROJECT}/occurrences`, body: occurrenceBody(note) });
  return b.name as string;
}

async function newKeyRing(): Promise<string> {
  const id = uid('ring');
  await asAdmin({ method: 'POST', path: `/v1/${LOCATION}/keyRings?keyRingId=${id}`, body: {} });
  return `${LOCATION}/keyRings/${id}`;
}

async function newKey(ring = RING): Promise<string> {
  const id = uid('key');
  await asAdmin({ method: 'POST', path: `/v1/${ring}/cryptoKeys?cryptoKeyId=${id}`, body: SIGNING_KEY });
  return `${ring}/cryptoKeys/${id}`;
}

// ---------------------------------------------------------------------------------------------
// The matrix, by hand from reference §7 (and Google's role pages for RM, Service Usage, KMS)

interface Target {
  /** The request; a function, so that setIamPolicy bodies carry the current etag. */
  readonly req: () => Req | Promise<Req>;
  /** The resource PERMISSION_DENIED must name. */
  readonly resource: string;
  /** Where a grant "on the resource itself" goes (its own setIamPolicy). */
  readonly grantOn?: string;
  /** As the admin after the denied calls: the resource is still there (denied writes did nothing). */
  readonly survives?: Req;
}

interface Row {
  /** The method, as Google's discovery document names it (plus the API version when not v1). */
  readonly method: string;
  /** The smallest Google role that grants the method. */
  readonly role: string;
  /** The permission the method needs (reference §7.2 / §7.3 / §7.4, or Google's API pages). */
  readonly permission: string;
  /** A role of another service. */
  readonly unrelated: string;
  /** Roles of the same service that do not hold `permission`. */
  readonly nearMiss?: readonly string[];
  /** Also grant `role` on the resource itself (attestor, note, occurrence, key ring, key, policy). */
  readonly onResource?: boolean;
  /** Every successful call needs a new target (delete, destroy, restore, disable). */
  readonly fresh?: boolean;
  readonly target: () => Promise<Target>;
  readonly ok?: (body: Body) => void;
}

const R = {
  // Binary Authorization (§7.1)
  attestorsAdmin: 'roles/binaryauthorization.attestorsAdmin',
  attestorsEditor: 'roles/binaryauthorization.attestorsEditor',
  attestorsVerifier: 'roles/binaryauthorization.attestorsVerifier',
  attestorsViewer: 'roles/binaryauthorization.attestorsViewer',
  policyAdmin: 'roles/binaryauthorization.policyAdmin',
  policyEditor: 'roles/binaryauthorization.policyEditor',
  policyEvaluator: 'roles/binaryauthorization.policyEvaluator',
  policyViewer: 'roles/binaryauthorization.policyViewer',
  serviceAgent: 'roles/binaryauthorization.serviceAgent',
  // Container Analysis (§7.3)
  caAdmin: 'roles/containeranalysis.admin',
  caViewer: 'roles/containeranalysis.viewer',
  notesAttacher: 'roles/containeranalysis.notes.attacher',
  notesOccurrencesViewer: 'roles/containeranalysis.notes.occurrences.viewer',
  notesEditor: 'roles/containeranalysis.notes.editor',
  notesViewer: 'roles/containeranalysis.notes.viewer',
  occurrencesEditor: 'roles/containeranalysis.occurrences.editor',
  occurrencesViewer: 'roles/containeranalysis.occurrences.viewer',
  // Cloud KMS (§7.4, and Google's KMS role page for admin and viewer)
  kmsAdmin: 'roles/cloudkms.admin',
  kmsViewer: 'roles/cloudkms.viewer',
  signer: 'roles/cloudkms.signer',
  verifier: 'roles/cloudkms.verifier',
  signerVerifier: 'roles/cloudkms.signerVerifier',
  publicKeyViewer: 'roles/cloudkms.publicKeyViewer',
  // Others (Google's Resource Manager, Service Usage and Cloud Run role pages)
  projectIamAdmin: 'roles/resourcemanager.projectIamAdmin',
  serviceUsageAdmin: 'roles/serviceusage.serviceUsageAdmin',
  serviceUsageViewer: 'roles/serviceusage.serviceUsageViewer',
  runInvoker: 'roles/run.invoker',
  owner: 'roles/owner',
  editor: 'roles/editor',
} as const;

const get = (path: string): Req => ({ method: 'GET', path });
const post = (path: string, body: unknown = {}): Req => ({ method: 'POST', path, body });

/** Binary Authorization rows for one API version (v1 in full; v1beta1 and v1alpha2 as spot checks). */
function binauthzRows(v: string, only?: readonly string[]): Row[] {
  const rows: Row[] = [
    {
      method: 'projects.getPolicy', role: R.policyViewer, permission: 'binaryauthorization.policy.get',
      unrelated: R.publicKeyViewer, nearMiss: [R.attestorsAdmin], onResource: true,
      target: async () => ({ resource: POLICY, grantOn: POLICY, req: () => get(`/${v}/${POLICY}`) }),
      ok: (b) => expect(b.name).toBe(POLICY),
    },
    {
      method: 'projects.updatePolicy', role: R.policyEditor, permission: 'binaryauthorization.policy.update',
      unrelated: R.signer, nearMiss: [R.policyViewer, R.policyEvaluator], onResource: true,
      target: async () => ({ resource: POLICY, grantOn: POLICY, req: () => ({ method: 'PUT', path: `/${v}/${POLICY}`, body: ALLOW_ALL_POLICY }) }),
      ok: (b) => expect(b.defaultAdmissionRule.evaluationMode).toBe('ALWAYS_ALLOW'),
    },
    {
      method: 'projects.policy.getIamPolicy', role: R.policyAdmin, permission: 'binaryauthorization.policy.getIamPolicy',
      unrelated: R.kmsViewer, nearMiss: [R.policyEditor], onResource: true,
      target: async () => ({ resource: POLICY, grantOn: POLICY, req: () => iamMethodsOf(POLICY, v).get }),
      ok: (b) => expect(typeof b.etag).toBe('string'),
    },
    {
      method: 'projects.policy.setIamPolicy', role: R.policyAdmin, permission: 'binaryauthorization.policy.setIamPolicy',
      unrelated: R.kmsAdmin, nearMiss: [R.policyEditor], onResource: true,
      target: async () => ({ resource: POLICY, grantOn: POLICY, req: () => rewritePolicyRequest(server, POLICY, v) }),
    },
    {
      method: 'projects.attestors.create', role: R.attestorsEditor, permission: 'binaryauthorization.attestors.create',
      unrelated: R.notesEditor, nearMiss: [R.attestorsVerifier, R.attestorsViewer],
      target: async () => ({ resource: PROJECT, req: () => post(`/${v}/${PROJECT}/attestors?attestorId=${uid('created')}`, attestorBody(NOTE, v)) }),
      ok: (b) => expect(b.name).toMatch(/^projects\/demo\/attestors\/created-\d+$/),
    },
    {
      method: 'projects.attestors.get', role: R.attestorsViewer, permission: 'binaryauthorization.attestors.get',
      unrelated: R.notesViewer, nearMiss: [R.policyAdmin], onResource: true,
      target: async () => ({ resource: ATTESTOR, grantOn: ATTESTOR, req: () => get(`/${v}/${ATTESTOR}`) }),
      ok: (b) => expect(b.name).toBe(ATTESTOR),
    },
    {
      method: 'projects.attestors.list', role: R.attestorsViewer, permission: 'binaryauthorization.attestors.list',
      unrelated: R.kmsViewer, nearMiss: [R.policyViewer],
      target: async () => ({ resource: PROJECT, req: () => get(`/${v}/${PROJECT}/attestors`) }),
      ok: (b) => expect(b.attestors.map((a: Body) => a.name)).toContain(ATTESTOR),
    },
    {
      method: 'projects.attestors.update', role: R.attestorsEditor, permission: 'binaryauthorization.attestors.update',
      unrelated: R.kmsAdmin, nearMiss: [R.attestorsVerifier, R.attestorsViewer], onResource: true,
      target: async () => ({ resource: ATTESTOR, grantOn: ATTESTOR, req: () => ({ method: 'PUT', path: `/${v}/${ATTESTOR}`, body: { name: ATTESTOR, ...attestorBody(NOTE, v) } }) }),
      ok: (b) => expect(b.name).toBe(ATTESTOR),
    },
    {
      method: 'projects.attestors.delete', role: R.attestorsEditor, permission: 'binaryauthorization.attestors.delete',
      unrelated: R.caAdmin, nearMiss: [R.attestorsVerifier], onResource: true, fresh: true,
      target: async () => {
        const a = await newAttestor();
        return { resource: a, grantOn: a, req: () => ({ method: 'DELETE', path: `/${v}/${a}` }), survives: get(`/v1/${a}`) };
      },
    },
    {
      method: 'projects.attestors.validateAttestationOccurrence', role: R.attestorsVerifier, permission: 'binaryauthorization.attestors.verifyImageAttested',
      unrelated: R.verifier, nearMiss: [R.attestorsViewer], onResource: true,
      target: async () => ({
        resource: ATTESTOR,
        grantOn: ATTESTOR,
        req: () => post(`/${v}/${ATTESTOR}:validateAttestationOccurrence`, { attestation: ATTESTATION, occurrenceNote: NOTE, occurrenceResourceUri: IMAGE }),
      }),
      ok: (b) => expect(b.result).toBe('ATTESTATION_NOT_VERIFIABLE'),
    },
    {
      method: 'projects.attestors.getIamPolicy', role: R.attestorsAdmin, permission: 'binaryauthorization.attestors.getIamPolicy',
      unrelated: R.caViewer, nearMiss: [R.attestorsEditor], onResource: true,
      target: async () => ({ resource: ATTESTOR, grantOn: ATTESTOR, req: () => iamMethodsOf(ATTESTOR, v).get }),
      ok: (b) => expect(typeof b.etag).toBe('string'),
    },
    {
      method: 'projects.attestors.setIamPolicy', role: R.attestorsAdmin, permission: 'binaryauthorization.attestors.setIamPolicy',
      unrelated: R.caAdmin, nearMiss: [R.attestorsEditor, R.policyAdmin], onResource: true,
      target: async () => ({ resource: ATTESTOR, grantOn: ATTESTOR, req: () => rewritePolicyRequest(server, ATTESTOR, v) }),
    },
  ];
  return rows
    .filter((r) => only === undefined || only.includes(r.method))
    .map((r) => ({ ...r, method: v === 'v1' ? r.method : `${v} ${r.method}` }));
}

const containerAnalysisRows: Row[] = [
  {
    method: 'projects.notes.create', role: R.notesEditor, permission: 'containeranalysis.notes.create',
    unrelated: R.attestorsAdmin, nearMiss: [R.notesViewer, R.notesAttacher, R.occurrencesEditor],
    target: async () => ({ resource: PROJECT, req: () => post(`/v1/${PROJECT}/notes?noteId=${uid('created')}`, ATTESTATION_NOTE) }),
    ok: (b) => expect(b.kind).toBe('ATTESTATION'),
  },
  {
    method: 'projects.notes.get', role: R.notesViewer, permission: 'containeranalysis.notes.get',
    unrelated: R.attestorsViewer, nearMiss: [R.occurrencesViewer], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => get(`/v1/${NOTE}`) }),
    ok: (b) => expect(b.name).toBe(NOTE),
  },
  {
    method: 'projects.notes.list', role: R.notesViewer, permission: 'containeranalysis.notes.list',
    unrelated: R.attestorsViewer, nearMiss: [R.notesAttacher, R.notesOccurrencesViewer, R.occurrencesViewer],
    target: async () => ({ resource: PROJECT, req: () => get(`/v1/${PROJECT}/notes`) }),
    ok: (b) => expect(b.notes.map((n: Body) => n.name)).toContain(NOTE),
  },
  {
    method: 'projects.notes.patch', role: R.notesEditor, permission: 'containeranalysis.notes.update',
    unrelated: R.policyEditor, nearMiss: [R.notesViewer, R.notesAttacher], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => ({ method: 'PATCH', path: `/v1/${NOTE}?updateMask=shortDescription`, body: { shortDescription: 'patched' } }) }),
    ok: (b) => expect(b.shortDescription).toBe('patched'),
  },
  {
    method: 'projects.notes.delete', role: R.notesEditor, permission: 'containeranalysis.notes.delete',
    unrelated: R.attestorsEditor, nearMiss: [R.notesAttacher, R.occurrencesEditor], onResource: true, fresh: true,
    target: async () => {
      const n = await newNote();
      return { resource: n, grantOn: n, req: () => ({ method: 'DELETE', path: `/v1/${n}` }), survives: get(`/v1/${n}`) };
    },
  },
  {
    method: 'projects.notes.getIamPolicy', role: R.caViewer, permission: 'containeranalysis.notes.getIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.notesEditor], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => iamMethodsOf(NOTE).get }),
    ok: (b) => expect(typeof b.etag).toBe('string'),
  },
  {
    method: 'projects.notes.setIamPolicy', role: R.caAdmin, permission: 'containeranalysis.notes.setIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.caViewer, R.notesEditor], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => rewritePolicyRequest(server, NOTE) }),
  },
  {
    method: 'projects.notes.occurrences.list', role: R.notesOccurrencesViewer, permission: 'containeranalysis.notes.listOccurrences',
    unrelated: R.kmsViewer, nearMiss: [R.notesViewer, R.occurrencesViewer], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => get(`/v1/${NOTE}/occurrences`) }),
    ok: (b) => expect(b.occurrences.map((o: Body) => o.name)).toContain(OCCURRENCE),
  },
  {
    method: 'projects.occurrences.get', role: R.occurrencesViewer, permission: 'containeranalysis.occurrences.get',
    unrelated: R.attestorsViewer, nearMiss: [R.notesViewer], onResource: true,
    target: async () => ({ resource: OCCURRENCE, grantOn: OCCURRENCE, req: () => get(`/v1/${OCCURRENCE}`) }),
    ok: (b) => expect(b.name).toBe(OCCURRENCE),
  },
  {
    method: 'projects.occurrences.list', role: R.occurrencesViewer, permission: 'containeranalysis.occurrences.list',
    unrelated: R.attestorsViewer, nearMiss: [R.notesViewer, R.notesOccurrencesViewer],
    target: async () => ({ resource: PROJECT, req: () => get(`/v1/${PROJECT}/occurrences`) }),
    ok: (b) => expect(b.occurrences.map((o: Body) => o.name)).toContain(OCCURRENCE),
  },
  {
    method: 'projects.occurrences.patch', role: R.occurrencesEditor, permission: 'containeranalysis.occurrences.update',
    unrelated: R.attestorsEditor, nearMiss: [R.occurrencesViewer, R.notesEditor], onResource: true,
    target: async () => ({ resource: OCCURRENCE, grantOn: OCCURRENCE, req: () => ({ method: 'PATCH', path: `/v1/${OCCURRENCE}?updateMask=remediation`, body: { remediation: 'none' } }) }),
    ok: (b) => expect(b.remediation).toBe('none'),
  },
  {
    method: 'projects.occurrences.delete', role: R.occurrencesEditor, permission: 'containeranalysis.occurrences.delete',
    unrelated: R.attestorsEditor, nearMiss: [R.occurrencesViewer, R.notesEditor], onResource: true, fresh: true,
    target: async () => {
      const o = await newOccurrence();
      return { resource: o, grantOn: o, req: () => ({ method: 'DELETE', path: `/v1/${o}` }), survives: get(`/v1/${o}`) };
    },
  },
  {
    method: 'projects.occurrences.getIamPolicy', role: R.caViewer, permission: 'containeranalysis.occurrences.getIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.occurrencesEditor], onResource: true,
    target: async () => ({ resource: OCCURRENCE, grantOn: OCCURRENCE, req: () => iamMethodsOf(OCCURRENCE).get }),
  },
  {
    method: 'projects.occurrences.setIamPolicy', role: R.caAdmin, permission: 'containeranalysis.occurrences.setIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.caViewer, R.occurrencesEditor], onResource: true,
    target: async () => ({ resource: OCCURRENCE, grantOn: OCCURRENCE, req: () => rewritePolicyRequest(server, OCCURRENCE) }),
  },
  // Spot checks: the v1beta1 API and the regional (`locations/*`) form of v1.
  {
    method: 'v1beta1 projects.notes.get', role: R.notesViewer, permission: 'containeranalysis.notes.get',
    unrelated: R.attestorsViewer, nearMiss: [R.occurrencesViewer], onResource: true,
    target: async () => ({ resource: NOTE, grantOn: NOTE, req: () => get(`/v1beta1/${NOTE}`) }),
    ok: (b) => expect(b.name).toBe(NOTE),
  },
  {
    method: 'v1beta1 projects.occurrences.list', role: R.occurrencesViewer, permission: 'containeranalysis.occurrences.list',
    unrelated: R.attestorsViewer, nearMiss: [R.notesViewer],
    target: async () => ({ resource: PROJECT, req: () => get(`/v1beta1/${PROJECT}/occurrences`) }),
  },
  {
    method: 'v1beta1 projects.occurrences.create', role: R.caAdmin, permission: 'containeranalysis.occurrences.create',
    unrelated: R.attestorsAdmin, nearMiss: [R.occurrencesViewer],
    target: async () => ({
      resource: PROJECT,
      req: () => post(`/v1beta1/${PROJECT}/occurrences`, {
        noteName: NOTE,
        resource: { uri: IMAGE },
        attestation: { attestation: { genericSignedAttestation: { contentType: 'SIMPLE_SIGNING_JSON', serializedPayload: ATTESTATION.serializedPayload, signatures: ATTESTATION.signatures } } },
      }),
    }),
  },
  {
    method: 'projects.locations.notes.get', role: R.notesViewer, permission: 'containeranalysis.notes.get',
    unrelated: R.attestorsViewer, nearMiss: [R.occurrencesViewer],
    target: async () => ({ resource: REGIONAL_NOTE, req: () => get(`/v1/${REGIONAL_NOTE}`) }),
    ok: (b) => expect(b.name).toBe(REGIONAL_NOTE),
  },
];

const kmsRows: Row[] = [
  {
    method: 'projects.locations.list', role: R.signerVerifier, permission: 'cloudkms.locations.list',
    unrelated: R.attestorsViewer,
    target: async () => ({ resource: PROJECT, req: () => get(`/v1/${PROJECT}/locations`) }),
  },
  {
    method: 'projects.locations.get', role: R.signerVerifier, permission: 'cloudkms.locations.get',
    unrelated: R.attestorsViewer,
    target: async () => ({ resource: LOCATION, req: () => get(`/v1/${LOCATION}`) }),
  },
  {
    method: 'keyRings.create', role: R.kmsAdmin, permission: 'cloudkms.keyRings.create',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier],
    target: async () => ({ resource: LOCATION, req: () => post(`/v1/${LOCATION}/keyRings?keyRingId=${uid('created-ring')}`) }),
    ok: (b) => expect(b.name).toMatch(/\/keyRings\/created-ring-\d+$/),
  },
  {
    method: 'keyRings.get', role: R.kmsViewer, permission: 'cloudkms.keyRings.get',
    unrelated: R.attestorsViewer, nearMiss: [R.signerVerifier, R.publicKeyViewer], onResource: true,
    target: async () => ({ resource: RING, grantOn: RING, req: () => get(`/v1/${RING}`) }),
    ok: (b) => expect(b.name).toBe(RING),
  },
  {
    method: 'keyRings.list', role: R.kmsViewer, permission: 'cloudkms.keyRings.list',
    unrelated: R.attestorsViewer, nearMiss: [R.signerVerifier],
    target: async () => ({ resource: LOCATION, req: () => get(`/v1/${LOCATION}/keyRings`) }),
    ok: (b) => expect(b.keyRings.map((k: Body) => k.name)).toContain(RING),
  },
  {
    method: 'keyRings.getIamPolicy', role: R.kmsAdmin, permission: 'cloudkms.keyRings.getIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.signerVerifier], onResource: true,
    target: async () => ({ resource: RING, grantOn: RING, req: () => iamMethodsOf(RING).get }),
  },
  {
    method: 'keyRings.setIamPolicy', role: R.kmsAdmin, permission: 'cloudkms.keyRings.setIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true,
    target: async () => ({ resource: RING, grantOn: RING, req: () => rewritePolicyRequest(server, RING) }),
  },
  {
    method: 'keyRings.cryptoKeys.create', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeys.create',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true,
    target: async () => ({ resource: RING, grantOn: RING, req: () => post(`/v1/${RING}/cryptoKeys?cryptoKeyId=${uid('created-key')}`, SIGNING_KEY) }),
    ok: (b) => expect(b.purpose).toBe('ASYMMETRIC_SIGN'),
  },
  {
    method: 'keyRings.cryptoKeys.get', role: R.kmsViewer, permission: 'cloudkms.cryptoKeys.get',
    unrelated: R.attestorsViewer, nearMiss: [R.signer, R.publicKeyViewer], onResource: true,
    target: async () => ({ resource: KEY, grantOn: KEY, req: () => get(`/v1/${KEY}`) }),
    ok: (b) => expect(b.name).toBe(KEY),
  },
  {
    method: 'keyRings.cryptoKeys.list', role: R.kmsViewer, permission: 'cloudkms.cryptoKeys.list',
    unrelated: R.attestorsViewer, nearMiss: [R.signerVerifier], onResource: true,
    target: async () => ({ resource: RING, grantOn: RING, req: () => get(`/v1/${RING}/cryptoKeys`) }),
    ok: (b) => expect(b.cryptoKeys.map((k: Body) => k.name)).toContain(KEY),
  },
  {
    method: 'keyRings.cryptoKeys.patch', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeys.update',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true,
    target: async () => ({ resource: KEY, grantOn: KEY, req: () => ({ method: 'PATCH', path: `/v1/${KEY}?updateMask=labels`, body: { labels: { team: 'matrix' } } }) }),
    ok: (b) => expect(b.labels).toEqual({ team: 'matrix' }),
  },
  {
    method: 'keyRings.cryptoKeys.getIamPolicy', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeys.getIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.signerVerifier], onResource: true,
    target: async () => ({ resource: KEY, grantOn: KEY, req: () => iamMethodsOf(KEY).get }),
  },
  {
    method: 'keyRings.cryptoKeys.setIamPolicy', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeys.setIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true,
    target: async () => ({ resource: KEY, grantOn: KEY, req: () => rewritePolicyRequest(server, KEY) }),
  },
  {
    method: 'cryptoKeyVersions.create', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeyVersions.create',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true,
    target: async () => {
      const k = await newKey();
      return { resource: k, grantOn: k, req: () => post(`/v1/${k}/cryptoKeyVersions`) };
    },
    ok: (b) => expect(b.name).toMatch(/\/cryptoKeyVersions\/\d+$/),
  },
  {
    method: 'cryptoKeyVersions.list', role: R.kmsViewer, permission: 'cloudkms.cryptoKeyVersions.list',
    unrelated: R.attestorsViewer, nearMiss: [R.signerVerifier], onResource: true,
    target: async () => ({ resource: KEY, grantOn: KEY, req: () => get(`/v1/${KEY}/cryptoKeyVersions`) }),
    ok: (b) => expect(b.cryptoKeyVersions.map((x: Body) => x.name)).toContain(VERSION),
  },
  {
    method: 'cryptoKeyVersions.get', role: R.kmsViewer, permission: 'cloudkms.cryptoKeyVersions.get',
    unrelated: R.attestorsViewer, nearMiss: [R.signerVerifier], onResource: true,
    target: async () => ({ resource: VERSION, grantOn: KEY, req: () => get(`/v1/${VERSION}`) }),
    ok: (b) => expect(b.name).toBe(VERSION),
  },
  {
    method: 'cryptoKeyVersions.getPublicKey', role: R.publicKeyViewer, permission: 'cloudkms.cryptoKeyVersions.viewPublicKey',
    unrelated: R.attestorsViewer, nearMiss: [R.signer], onResource: true,
    target: async () => ({ resource: VERSION, grantOn: KEY, req: () => get(`/v1/${VERSION}/publicKey`) }),
    ok: (b) => expect(b.pem).toContain('BEGIN PUBLIC KEY'),
  },
  {
    method: 'cryptoKeyVersions.asymmetricSign', role: R.signer, permission: 'cloudkms.cryptoKeyVersions.useToSign',
    unrelated: R.attestorsVerifier, nearMiss: [R.verifier, R.publicKeyViewer, R.kmsAdmin], onResource: true,
    target: async () => ({ resource: VERSION, grantOn: KEY, req: () => post(`/v1/${VERSION}:asymmetricSign`, SHA256_DIGEST) }),
    ok: (b) => expect(typeof b.signature).toBe('string'),
  },
  {
    method: 'cryptoKeyVersions.destroy', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeyVersions.destroy',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true, fresh: true,
    target: async () => {
      const k = await newKey();
      const ver = `${k}/cryptoKeyVersions/1`;
      return { resource: ver, grantOn: k, req: () => post(`/v1/${ver}:destroy`), survives: get(`/v1/${ver}`) };
    },
    ok: (b) => expect(b.state).toBe('DESTROY_SCHEDULED'),
  },
  {
    method: 'cryptoKeyVersions.restore', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeyVersions.restore',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signerVerifier], onResource: true, fresh: true,
    target: async () => {
      const k = await newKey();
      const ver = `${k}/cryptoKeyVersions/1`;
      await asAdmin(post(`/v1/${ver}:destroy`));
      return { resource: ver, grantOn: k, req: () => post(`/v1/${ver}:restore`) };
    },
    ok: (b) => expect(b.state).toBe('DISABLED'),
  },
  {
    method: 'cryptoKeyVersions.patch', role: R.kmsAdmin, permission: 'cloudkms.cryptoKeyVersions.update',
    unrelated: R.attestorsAdmin, nearMiss: [R.kmsViewer, R.signer], onResource: true, fresh: true,
    target: async () => {
      const k = await newKey();
      const ver = `${k}/cryptoKeyVersions/1`;
      return { resource: ver, grantOn: k, req: () => ({ method: 'PATCH', path: `/v1/${ver}?updateMask=state`, body: { state: 'DISABLED' } }) };
    },
    ok: (b) => expect(b.state).toBe('DISABLED'),
  },
];

const projectRows: Row[] = [
  {
    // §7.1: every Binary Authorization role also includes resourcemanager.projects.get.
    method: 'cloudresourcemanager projects.get', role: R.attestorsViewer, permission: 'resourcemanager.projects.get',
    unrelated: R.runInvoker,
    target: async () => ({ resource: PROJECT, req: () => get(`/v1/${PROJECT}`) }),
    ok: (b) => expect(b.projectId).toBe(P),
  },
  {
    method: 'cloudresourcemanager projects.getIamPolicy', role: R.projectIamAdmin, permission: 'resourcemanager.projects.getIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.policyAdmin],
    target: async () => ({ resource: PROJECT, req: () => iamMethodsOf(PROJECT).get }),
    ok: (b) => expect(b.bindings.length).toBeGreaterThan(0),
  },
  {
    method: 'cloudresourcemanager projects.setIamPolicy', role: R.projectIamAdmin, permission: 'resourcemanager.projects.setIamPolicy',
    unrelated: R.attestorsAdmin, nearMiss: [R.editor, R.policyAdmin],
    target: async () => ({ resource: PROJECT, req: () => rewritePolicyRequest(server, PROJECT) }),
  },
  {
    method: 'serviceusage services.enable', role: R.serviceUsageAdmin, permission: 'serviceusage.services.enable',
    unrelated: R.attestorsAdmin, nearMiss: [R.serviceUsageViewer],
    target: async () => ({ resource: PROJECT, req: () => post(`/v1/${PROJECT}/services/binaryauthorization.googleapis.com:enable`) }),
    ok: (b) => expect(b.done).toBe(true),
  },
  {
    method: 'serviceusage services.batchEnable', role: R.serviceUsageAdmin, permission: 'serviceusage.services.enable',
    unrelated: R.attestorsAdmin, nearMiss: [R.serviceUsageViewer],
    target: async () => ({ resource: PROJECT, req: () => post(`/v1/${PROJECT}/services:batchEnable`, { serviceIds: ['containeranalysis.googleapis.com', 'cloudkms.googleapis.com'] }) }),
    ok: (b) => expect(b.done).toBe(true),
  },
  {
    method: 'serviceusage services.list', role: R.serviceUsageViewer, permission: 'serviceusage.services.list',
    unrelated: R.attestorsAdmin,
    target: async () => ({ resource: PROJECT, req: () => get(`/v1/${PROJECT}/services`) }),
  },
];

const ROWS: readonly Row[] = [
  ...binauthzRows('v1'),
  ...binauthzRows('v1beta1', ['projects.attestors.create', 'projects.attestors.get', 'projects.updatePolicy', 'projects.attestors.setIamPolicy', 'projects.attestors.validateAttestationOccurrence']),
  ...binauthzRows('v1alpha2', ['projects.getPolicy', 'projects.attestors.list', 'projects.attestors.get', 'projects.attestors.getIamPolicy', 'projects.attestors.delete']),
  ...containerAnalysisRows,
  ...kmsRows,
  ...projectRows,
];

// ---------------------------------------------------------------------------------------------
// What each documented role holds, within the permissions the server checks (§7.1, §7.3, §7.4)

const BA_UNIVERSE = [
  ...['create', 'delete', 'get', 'getIamPolicy', 'list', 'setIamPolicy', 'update', 'verifyImageAttested'].map((p) => `binaryauthorization.attestors.${p}`),
  ...['get', 'update', 'getIamPolicy', 'setIamPolicy'].map((p) => `binaryauthorization.policy.${p}`),
  'resourcemanager.projects.get',
];
const CA_UNIVERSE = [
  ...['attachOccurrence', 'create', 'delete', 'get', 'list', 'update', 'listOccurrences', 'getIamPolicy', 'setIamPolicy'].map((p) => `containeranalysis.notes.${p}`),
  ...['create', 'delete', 'get', 'list', 'update', 'getIamPolicy', 'setIamPolicy'].map((p) => `containeranalysis.occurrences.${p}`),
];
const KMS_UNIVERSE = [
  ...['useToSign', 'useToVerify', 'viewPublicKey', 'create', 'destroy', 'restore', 'update', 'get', 'list'].map((p) => `cloudkms.cryptoKeyVersions.${p}`),
  ...['create', 'get', 'list', 'update', 'getIamPolicy', 'setIamPolicy'].map((p) => `cloudkms.cryptoKeys.${p}`),
  ...['create', 'get', 'list', 'getIamPolicy', 'setIamPolicy'].map((p) => `cloudkms.keyRings.${p}`),
];
const ba = (...ps: string[]) => [...ps.map((p) => `binaryauthorization.${p}`), 'resourcemanager.projects.get'];
const ca = (...ps: string[]) => ps.map((p) => `containeranalysis.${p}`);
const kms = (...ps: string[]) => ps.map((p) => `cloudkms.cryptoKeyVersions.${p}`);

const ROLE_CONTENTS: ReadonlyArray<{ role: string; universe: readonly string[]; holds: readonly string[] }> = [
  { role: R.attestorsAdmin, universe: BA_UNIVERSE, holds: ba(...['create', 'delete', 'get', 'getIamPolicy', 'list', 'setIamPolicy', 'update', 'verifyImageAttested'].map((p) => `attestors.${p}`)) },
  { role: R.attestorsEditor, universe: BA_UNIVERSE, holds: ba(...['create', 'delete', 'get', 'list', 'update', 'verifyImageAttested'].map((p) => `attestors.${p}`)) },
  { role: R.attestorsVerifier, universe: BA_UNIVERSE, holds: ba('attestors.get', 'attestors.list', 'attestors.verifyImageAttested') },
  { role: R.attestorsViewer, universe: BA_UNIVERSE, holds: ba('attestors.get', 'attestors.list') },
  { role: R.policyAdmin, universe: BA_UNIVERSE, holds: ba('policy.get', 'policy.getIamPolicy', 'policy.setIamPolicy', 'policy.update') },
  { role: R.policyEditor, universe: BA_UNIVERSE, holds: ba('policy.get', 'policy.update') },
  { role: R.policyEvaluator, universe: BA_UNIVERSE, holds: ba('policy.get') },
  { role: R.policyViewer, universe: BA_UNIVERSE, holds: ba('policy.get') },
  {
    role: R.serviceAgent,
    universe: [...BA_UNIVERSE, ...CA_UNIVERSE],
    holds: [...ba('attestors.get', 'attestors.list', 'attestors.verifyImageAttested'), ...ca('notes.get', 'notes.list', 'notes.listOccurrences', 'occurrences.get', 'occurrences.list')],
  },
  { role: R.notesAttacher, universe: CA_UNIVERSE, holds: ca('notes.attachOccurrence', 'notes.get') },
  { role: R.notesOccurrencesViewer, universe: CA_UNIVERSE, holds: ca('notes.get', 'notes.listOccurrences') },
  { role: R.notesEditor, universe: CA_UNIVERSE, holds: ca(...['attachOccurrence', 'create', 'delete', 'get', 'list', 'update'].map((p) => `notes.${p}`)) },
  { role: R.notesViewer, universe: CA_UNIVERSE, holds: ca('notes.get', 'notes.list') },
  { role: R.occurrencesEditor, universe: CA_UNIVERSE, holds: ca(...['create', 'delete', 'get', 'list', 'update'].map((p) => `occurrences.${p}`)) },
  { role: R.occurrencesViewer, universe: CA_UNIVERSE, holds: ca('occurrences.get', 'occurrences.list') },
  { role: R.caViewer, universe: CA_UNIVERSE, holds: ca('notes.get', 'notes.getIamPolicy', 'notes.list', 'occurrences.get', 'occurrences.getIamPolicy', 'occurrences.list') },
  { role: R.signerVerifier, universe: KMS_UNIVERSE, holds: kms('useToSign', 'useToVerify', 'viewPublicKey') },
  { role: R.signer, universe: KMS_UNIVERSE, holds: kms('useToSign') },
  { role: R.verifier, universe: KMS_UNIVERSE, holds: kms('useToVerify', 'viewPublicKey') },
  { role: R.publicKeyViewer, universe: KMS_UNIVERSE, holds: kms('viewPublicKey') },
];

// ---------------------------------------------------------------------------------------------
// Principals: made once, before any test

/** One principal per role, holding that role on projects/demo and nothing else. */
const byRole = new Map<string, Caller>();
/** One principal per matrix row, granted the row's role on the resource itself by the row's test. */
const onResource = new Map<string, Caller>();
const callers: Record<string, Caller> = {};

function holder(role: string): Caller {
  const c = byRole.get(role);
  if (c === undefined) throw new Error(`no principal holds ${role}`);
  return c;
}

/** When the 2-second token of `expiring-root` was made. */
let expiringCreated = 0;

const numbered = <T>(xs: readonly T[]) => xs.map((x, i) => [i, x] as const);

beforeAll(async () => {
  server = await startServer();
  for (const id of [P, 'attestors-prj', 'deployer-prj']) expectOk(await send(server, post('/tollgate/v1/projects', { projectId: id }), server.adminToken));

  // Fixtures.
  await asAdmin(post(`/v1/${PROJECT}/notes?noteId=base-note`, ATTESTATION_NOTE));
  await asAdmin(post(`/v1/${PROJECT}/attestors?attestorId=base-attestor`, attestorBody(NOTE)));
  OCCURRENCE = await newOccurrence();
  await asAdmin(post(`/v1/${LOCATION}/keyRings?keyRingId=base-ring`));
  await asAdmin(post(`/v1/${RING}/cryptoKeys?cryptoKeyId=base-key`, SIGNING_KEY));
  await asAdmin(post(`/v1/${PROJECT}/locations/us/notes?noteId=regional-note`, ATTESTATION_NOTE));

  // Principals and tokens.
  const roles = new Set<string>([R.owner, ...ROLE_CONTENTS.map((r) => r.role)]);
  for (const row of ROWS) for (const role of [row.role, row.unrelated, ...(row.nearMiss ?? [])]) roles.add(role);
  for (const role of roles) byRole.set(role, await createCaller(server, `p.${roleSlug(role)}@example.com`));
  for (const [i, row] of numbered(ROWS)) if (row.onResource) onResource.set(row.method, await createCaller(server, `r${i}@resource.example.com`));
  callers['nobody'] = await createCaller(server, 'nobody@example.com');
  callers['root'] = await createCaller(server, 'root@example.com', { superuser: true });
  callers['occBoth'] = await createCaller(server, 'occ-both@example.com');
  callers['occNote'] = await createCaller(server, 'occ-note@example.com');
  callers['getNotes'] = await createCaller(server, 'get-notes@example.com');
  callers['scoped'] = await createCaller(server, 'scoped@example.com');
  callers['recreated'] = await createCaller(server, 'recreated@example.com');
  callers['ringViewer'] = await createCaller(server, 'ring-viewer@example.com');
  callers['deployer'] = await createCaller(server, 'deployer@deployer-prj.iam.gserviceaccount.com', { type: 'serviceAccount' });
  callers['revoked'] = await createCaller(server, 'revoked-root@example.com', { superuser: true });
  callers['expiring'] = await createCaller(server, 'expiring-root@example.com', { superuser: true, expiresIn: '2s' });
  expiringCreated = Date.now();
  // The short-lived token works before it expires: what the 401 later is about is its expiry.
  expectOk(await send(server, get('/tollgate/v1/principals'), callers['expiring'].token));

  // Project-level grants, in one setIamPolicy each.
  await grant(server, PROJECT, [
    ...[...byRole].map(([role, c]) => [c.member, role] as const),
    [callers['occBoth'].member, R.occurrencesEditor],
    [callers['occBoth'].member, R.notesAttacher],
    [callers['occNote'].member, R.occurrencesEditor],
    [callers['getNotes'].member, R.occurrencesViewer],
    [callers['getNotes'].member, R.notesViewer],
  ]);
  await grant(server, 'projects/deployer-prj', [[callers['deployer'].member, R.policyEditor]]);
});

afterAll(async () => {
  await server?.stop();
});

// ---------------------------------------------------------------------------------------------
// The matrix

for (const row of ROWS) {
  describe(row.method, () => {
    let shared: Promise<Target> | undefined;
    const target = () => (shared ??= row.target());
    const forSuccess = () => (row.fresh ? row.target() : target());

    it('no role → 403 PERMISSION_DENIED', async () => {
      const t = await target();
      expectDenied(await send(server, await t.req(), callers['nobody']!.token), row.permission, t.resource);
    });

    it(`unrelated ${row.unrelated} → 403`, async () => {
      const t = await target();
      expectDenied(await send(server, await t.req(), holder(row.unrelated).token), row.permission, t.resource);
    });

    for (const near of row.nearMiss ?? []) {
      it(`${near} (no ${row.permission}) → 403`, async () => {
        const t = await target();
        expectDenied(await send(server, await t.req(), holder(near).token), row.permission, t.resource);
        if (t.survives !== undefined) await asAdmin(t.survives);
      });
    }

    it(`${row.role} on the project → 200`, async () => {
      const t = await forSuccess();
      const r = await send(server, await t.req(), holder(row.role).token);
      expectOk(r);
      row.ok?.(r.body);
    });

    if (row.onResource) {
      it(`${row.role} on the resource itself only → 200 (403 before the grant)`, async () => {
        const t = await forSuccess();
        const c = onResource.get(row.method) as Caller;
        expect(t.grantOn).toBeDefined();
        expectDenied(await send(server, await t.req(), c.token), row.permission, t.resource);
        await grant(server, t.grantOn as string, [[c.member, row.role]]);
        const r = await send(server, await t.req(), c.token);
        expectOk(r);
        row.ok?.(r.body);
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Methods with two permissions

describe('projects.occurrences.create (occurrences.create on the project AND notes.attachOccurrence on the note)', () => {
  const create = (note = NOTE): Req => post(`/v1/${PROJECT}/occurrences`, occurrenceBody(note));

  it('no role → 403 naming occurrences.create on the project', async () => {
    expectDenied(await send(server, create(), callers['nobody']!.token), 'containeranalysis.occurrences.create', PROJECT);
  });

  it(`unrelated ${R.attestorsAdmin} → 403`, async () => {
    expectDenied(await send(server, create(), holder(R.attestorsAdmin).token), 'containeranalysis.occurrences.create', PROJECT);
  });

  it(`${R.occurrencesEditor} alone → 403 naming notes.attachOccurrence on the note`, async () => {
    expectDenied(await send(server, create(), holder(R.occurrencesEditor).token), 'containeranalysis.notes.attachOccurrence', NOTE);
  });

  it(`${R.notesAttacher} alone → 403 naming occurrences.create on the project`, async () => {
    expectDenied(await send(server, create(), holder(R.notesAttacher).token), 'containeranalysis.occurrences.create', PROJECT);
  });

  it(`${R.occurrencesViewer} + nothing on the note → 403`, async () => {
    expectDenied(await send(server, create(), holder(R.occurrencesViewer).token), 'containeranalysis.occurrences.create', PROJECT);
  });

  it(`${R.occurrencesEditor} + ${R.notesAttacher}, both on the project → 200`, async () => {
    const r = await send(server, create(), callers['occBoth']!.token);
    expectOk(r);
    expect(r.body.noteName).toBe(NOTE);
  });

  it(`${R.occurrencesEditor} on the project + ${R.notesAttacher} on the note itself → 200 (403 before the note grant)`, async () => {
    const note = await newNote();
    const c = callers['occNote']!;
    expectDenied(await send(server, create(note), c.token), 'containeranalysis.notes.attachOccurrence', note);
    await grant(server, note, [[c.member, R.notesAttacher]]);
    expectOk(await send(server, create(note), c.token));
    // The grant is on that note only: another note of the project still refuses.
    expectDenied(await send(server, create(), c.token), 'containeranalysis.notes.attachOccurrence', NOTE);
  });

  it('attaching to a note in another project needs notes.attachOccurrence there (§7.5 attestation creators)', async () => {
    const foreign = await newNote('attestors-prj');
    expectDenied(await send(server, create(foreign), callers['occBoth']!.token), 'containeranalysis.notes.attachOccurrence', foreign);
  });
});

describe('projects.occurrences.getNotes (occurrences.get on the occurrence, then notes.get on its note)', () => {
  const req = () => get(`/v1/${OCCURRENCE}/notes`);

  it('no role → 403 naming occurrences.get', async () => {
    expectDenied(await send(server, req(), callers['nobody']!.token), 'containeranalysis.occurrences.get', OCCURRENCE);
  });

  it(`${R.occurrencesViewer} alone → 403 naming notes.get on the note`, async () => {
    expectDenied(await send(server, req(), holder(R.occurrencesViewer).token), 'containeranalysis.notes.get', NOTE);
  });

  it(`${R.notesViewer} alone → 403 naming occurrences.get`, async () => {
    expectDenied(await send(server, req(), holder(R.notesViewer).token), 'containeranalysis.occurrences.get', OCCURRENCE);
  });

  it(`${R.occurrencesViewer} + ${R.notesViewer} → 200`, async () => {
    const r = await send(server, req(), callers['getNotes']!.token);
    expectOk(r);
    expect(r.body.name).toBe(NOTE);
  });
});

// ---------------------------------------------------------------------------------------------
// testIamPermissions: no permission needed; answers the subset held; never NOT_FOUND

describe('testIamPermissions', () => {
  const sorted = (xs: readonly string[] | undefined) => [...(xs ?? [])].sort();
  const cases: ReadonlyArray<{ api: string; version?: string; resource: () => string; missing: string; ask: readonly string[]; role: string; holds: readonly string[] }> = [
    {
      api: 'v1 projects.attestors.testIamPermissions', resource: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`,
      ask: ['get', 'list', 'update', 'delete', 'getIamPolicy', 'setIamPolicy', 'verifyImageAttested'].map((p) => `binaryauthorization.attestors.${p}`),
      role: R.attestorsVerifier, holds: ['get', 'list', 'verifyImageAttested'].map((p) => `binaryauthorization.attestors.${p}`),
    },
    {
      api: 'v1beta1 projects.attestors.testIamPermissions', version: 'v1beta1', resource: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`,
      ask: ['get', 'update', 'setIamPolicy'].map((p) => `binaryauthorization.attestors.${p}`),
      role: R.attestorsEditor, holds: ['get', 'update'].map((p) => `binaryauthorization.attestors.${p}`),
    },
    {
      api: 'v1 projects.policy.testIamPermissions', resource: () => POLICY, missing: 'projects/no-such-prj/policy',
      ask: ['get', 'update', 'getIamPolicy', 'setIamPolicy'].map((p) => `binaryauthorization.policy.${p}`),
      role: R.policyEditor, holds: ['binaryauthorization.policy.get', 'binaryauthorization.policy.update'],
    },
    {
      api: 'projects.notes.testIamPermissions', resource: () => NOTE, missing: `${PROJECT}/notes/no-such-note`,
      ask: ['attachOccurrence', 'get', 'list', 'update', 'delete', 'listOccurrences', 'getIamPolicy', 'setIamPolicy'].map((p) => `containeranalysis.notes.${p}`),
      role: R.notesAttacher, holds: ['containeranalysis.notes.attachOccurrence', 'containeranalysis.notes.get'],
    },
    {
      api: 'projects.occurrences.testIamPermissions', resource: () => OCCURRENCE, missing: `${PROJECT}/occurrences/00000000-0000-4000-8000-000000000000`,
      ask: ['get', 'list', 'update', 'delete', 'getIamPolicy', 'setIamPolicy'].map((p) => `containeranalysis.occurrences.${p}`),
      role: R.occurrencesViewer, holds: ['containeranalysis.occurrences.get', 'containeranalysis.occurrences.list'],
    },
    {
      api: 'keyRings.cryptoKeys.testIamPermissions', resource: () => KEY, missing: `${RING}/cryptoKeys/no-such-key`,
      ask: ['useToSign', 'useToVerify', 'viewPublicKey', 'destroy', 'restore'].map((p) => `cloudkms.cryptoKeyVersions.${p}`),
      role: R.signerVerifier, holds: ['useToSign', 'useToVerify', 'viewPublicKey'].map((p) => `cloudkms.cryptoKeyVersions.${p}`),
    },
    {
      api: 'keyRings.testIamPermissions', resource: () => RING, missing: `${LOCATION}/keyRings/no-such-ring`,
      ask: ['cloudkms.keyRings.get', 'cloudkms.keyRings.list', 'cloudkms.cryptoKeys.create', 'cloudkms.keyRings.setIamPolicy'],
      role: R.kmsViewer, holds: ['cloudkms.keyRings.get', 'cloudkms.keyRings.list'],
    },
    {
      api: 'cloudresourcemanager projects.testIamPermissions', resource: () => PROJECT, missing: 'projects/no-such-prj',
      ask: ['resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy', 'binaryauthorization.policy.update'],
      role: R.projectIamAdmin, holds: ['resourcemanager.projects.getIamPolicy', 'resourcemanager.projects.setIamPolicy'],
    },
  ];

  for (const c of cases) {
    describe(c.api, () => {
      const test = (resource: string) => iamMethodsOf(resource, c.version).test(c.ask);

      it('no role → 200 with no permissions', async () => {
        const r = await send(server, test(c.resource()), callers['nobody']!.token);
        expectOk(r);
        expect(sorted(r.body.permissions)).toEqual([]);
      });

      it(`${c.role} → exactly ${c.holds.join(', ')}`, async () => {
        const r = await send(server, test(c.resource()), holder(c.role).token);
        expectOk(r);
        expect(sorted(r.body.permissions)).toEqual(sorted(c.holds));
      });

      it(`${c.role} on a missing resource → 200 with no permissions (never NOT_FOUND)`, async () => {
        const r = await send(server, test(c.missing), holder(c.role).token);
        expectOk(r);
        expect(sorted(r.body.permissions)).toEqual([]);
      });
    });
  }
});

describe('what each documented role holds (testIamPermissions on the project, reference §7.1, §7.3, §7.4)', () => {
  for (const c of ROLE_CONTENTS) {
    it(`${c.role} → exactly ${c.holds.length} of the ${c.universe.length} permissions asked`, async () => {
      const r = await send(server, iamMethodsOf(PROJECT).test(c.universe), holder(c.role).token);
      expectOk(r);
      expect([...(r.body.permissions ?? [])].sort()).toEqual([...c.holds].sort());
    });
  }
});

// ---------------------------------------------------------------------------------------------
// The system policy: any authenticated caller reads it, only a Tollgate superuser replaces it

describe('systempolicy', () => {
  const SYSTEM = 'locations/global/policy';
  const sameSystemPolicy = async (v = 'v1'): Promise<Req> => {
    const current = await asAdmin(get(`/v1/${SYSTEM}`));
    return { method: 'PUT', path: `/${v}/${SYSTEM}`, body: { admissionWhitelistPatterns: current.admissionWhitelistPatterns ?? [] } };
  };

  it('getPolicy: any authenticated caller, even with no role → 200', async () => {
    const r = await send(server, get(`/v1/${SYSTEM}`), callers['nobody']!.token);
    expectOk(r);
    expect(r.body.name).toBe(SYSTEM);
  });

  it('getPolicy: no token → 401', async () => {
    expectUnauthenticated(await send(server, get(`/v1/${SYSTEM}`), null));
  });

  for (const who of ['nobody', R.owner, R.policyAdmin, R.projectIamAdmin] as const) {
    it(`update: ${who === 'nobody' ? 'no role' : `${who} on a project`} → 403`, async () => {
      const token = who === 'nobody' ? callers['nobody']!.token : holder(who).token;
      expectForbidden(await send(server, await sameSystemPolicy(), token));
    });
  }

  it('update (v1beta1): roles/owner on a project → 403', async () => {
    expectForbidden(await send(server, await sameSystemPolicy('v1beta1'), holder(R.owner).token));
  });

  it('update: a Tollgate superuser → 200', async () => {
    expectOk(await send(server, await sameSystemPolicy(), callers['root']!.token));
  });
});

// ---------------------------------------------------------------------------------------------
// Tollgate's own admin API: superusers only; a project owner is not one

describe('tollgate admin endpoints', () => {
  let victims = 0;
  const victim = async (): Promise<string> => {
    victims += 1;
    const email = `victim-${victims}@example.com`;
    await asAdmin(post('/tollgate/v1/principals', { email, type: 'user' }));
    return email;
  };
  const tokenOfNobody = async (): Promise<string> => {
    const b = await asAdmin(post('/tollgate/v1/tokens', { principal: 'nobody@example.com', description: 'matrix' }));
    return String(b.token.name).replace(/^tokens\//, '');
  };

  const rows: ReadonlyArray<{ method: string; fresh?: boolean; target: () => Promise<{ req: Req; survives?: Req }> }> = [
    { method: 'POST /tollgate/v1/principals', target: async () => ({ req: post('/tollgate/v1/principals', { email: `made-${uid('p')}@example.com`, type: 'user' }) }) },
    { method: 'GET /tollgate/v1/principals', target: async () => ({ req: get('/tollgate/v1/principals') }) },
    { method: 'GET /tollgate/v1/principals/EMAIL', target: async () => ({ req: get('/tollgate/v1/principals/nobody@example.com') }) },
    {
      method: 'DELETE /tollgate/v1/principals/EMAIL', fresh: true,
      target: async () => {
        const email = await victim();
        return { req: { method: 'DELETE', path: `/tollgate/v1/principals/${email}` }, survives: get(`/tollgate/v1/principals/${email}`) };
      },
    },
    { method: 'POST /tollgate/v1/tokens', target: async () => ({ req: post('/tollgate/v1/tokens', { principal: 'nobody@example.com' }) }) },
    { method: 'GET /tollgate/v1/tokens', target: async () => ({ req: get('/tollgate/v1/tokens') }) },
    { method: 'GET /tollgate/v1/tokens/ID', target: async () => ({ req: get(`/tollgate/v1/tokens/${callers['nobody']!.tokenId}`) }) },
    {
      method: 'DELETE /tollgate/v1/tokens/ID', fresh: true,
      target: async () => {
        const id = await tokenOfNobody();
        return { req: { method: 'DELETE', path: `/tollgate/v1/tokens/${id}` }, survives: get(`/tollgate/v1/tokens/${id}`) };
      },
    },
    { method: 'POST /tollgate/v1/projects', target: async () => ({ req: post('/tollgate/v1/projects', { projectId: uid('made-prj') }) }) },
    { method: 'GET /tollgate/v1/projects', target: async () => ({ req: get('/tollgate/v1/projects') }) },
    { method: 'GET /tollgate/v1/projects/ID', target: async () => ({ req: get(`/tollgate/v1/${PROJECT}`) }) },
  ];

  for (const row of rows) {
    describe(row.method, () => {
      let shared: Promise<{ req: Req; survives?: Req }> | undefined;
      const target = () => (shared ??= row.target());

      it('no role → 403', async () => {
        const t = await target();
        expectForbidden(await send(server, t.req, callers['nobody']!.token));
        if (t.survives !== undefined) await asAdmin(t.survives);
      });

      it(`${R.owner} on a project → 403`, async () => {
        const t = await target();
        expectForbidden(await send(server, t.req, holder(R.owner).token));
        if (t.survives !== undefined) await asAdmin(t.survives);
      });

      it('a superuser → 200', async () => {
        const t = row.fresh ? await row.target() : await target();
        expectOk(await send(server, t.req, callers['root']!.token));
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Authentication: no token, unknown, expired and revoked tokens → 401 on a sample of methods

describe('authentication', () => {
  const SAMPLE: readonly Req[] = [
    get(`/v1/${POLICY}`),
    { method: 'PUT', path: `/v1/${POLICY}`, body: ALLOW_ALL_POLICY },
    get(`/v1/${PROJECT}/attestors`),
    get(`/v1beta1/${ATTESTOR}`),
    post(`/v1/${ATTESTOR}:setIamPolicy`, { policy: { bindings: [] } }),
    post(`/v1/${ATTESTOR}:testIamPermissions`, { permissions: ['binaryauthorization.attestors.get'] }),
    post(`/v1/${ATTESTOR}:validateAttestationOccurrence`, { attestation: ATTESTATION, occurrenceNote: NOTE, occurrenceResourceUri: IMAGE }),
    get('/v1/locations/global/policy'),
    get(`/v1/${NOTE}`),
    post(`/v1/${PROJECT}/occurrences`, occurrenceBody(NOTE)),
    get(`/v1/${LOCATION}/keyRings`),
    get(`/v1/${VERSION}/publicKey`),
    post(`/v1/${VERSION}:asymmetricSign`, SHA256_DIGEST),
    get(`/v1/${PROJECT}`),
    post(`/v1/${PROJECT}:setIamPolicy`, { policy: { bindings: [{ role: R.owner, members: ['user:nobody@example.com'] }] } }),
    get(`/v1/${PROJECT}/services`),
    get('/v1/operations/some-operation'),
    get('/tollgate/v1/principals'),
    post('/tollgate/v1/tokens', { principal: 'nobody@example.com' }),
    get('/tollgate/v1/projects'),
  ];
  const all = async (token: string | null) => {
    for (const req of SAMPLE) {
      const r = await send(server, req, token);
      expect(r.status, `${req.method} ${req.path}: ${JSON.stringify(r.body)}`).toBe(401);
      expectUnauthenticated(r);
    }
  };

  it(`no token → 401 UNAUTHENTICATED (${SAMPLE.length} methods)`, async () => {
    await all(null);
  });

  it('an unknown token → 401', async () => {
    await all(`tg_${randomBytes(32).toString('base64url')}`);
  });

  it('a token that is not a bearer token (Basic) → 401', async () => {
    const res = await fetch(`${server.url}/v1/${POLICY}`, { headers: { authorization: `Basic ${Buffer.from(`x:${server.adminToken}`).toString('base64')}` } });
    expectUnauthenticated({ status: res.status, body: await res.json() });
  });

  it('an expired token (expiresIn 2s, of a superuser) → 401', async () => {
    const wait = expiringCreated + 2_500 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await all(callers['expiring']!.token);
  });

  it('a revoked token (of a superuser) → 401 from the next request on', async () => {
    const c = callers['revoked']!;
    expectOk(await send(server, get(`/v1/${POLICY}`), c.token));
    expectOk(await send(server, { method: 'DELETE', path: `/tollgate/v1/tokens/${c.tokenId}` }, server.adminToken));
    await all(c.token);
  });
});

// ---------------------------------------------------------------------------------------------
// PERMISSION_DENIED never says whether the resource exists

describe('existence is not revealed', () => {
  const MISSING_OCCURRENCE = `${PROJECT}/occurrences/00000000-0000-4000-8000-000000000000`;
  const pairs: ReadonlyArray<{ method: string; permission: string; existing: () => string; missing: string; req: (name: string) => Req }> = [
    { method: 'attestors.get', permission: 'binaryauthorization.attestors.get', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => get(`/v1/${n}`) },
    { method: 'v1beta1 attestors.get', permission: 'binaryauthorization.attestors.get', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => get(`/v1beta1/${n}`) },
    { method: 'attestors.update', permission: 'binaryauthorization.attestors.update', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => ({ method: 'PUT', path: `/v1/${n}`, body: { name: n, ...attestorBody(NOTE) } }) },
    { method: 'attestors.delete', permission: 'binaryauthorization.attestors.delete', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => ({ method: 'DELETE', path: `/v1/${n}` }) },
    { method: 'attestors.getIamPolicy', permission: 'binaryauthorization.attestors.getIamPolicy', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => iamMethodsOf(n).get },
    { method: 'attestors.setIamPolicy', permission: 'binaryauthorization.attestors.setIamPolicy', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => iamMethodsOf(n).set({ bindings: [] }) },
    {
      method: 'attestors.validateAttestationOccurrence', permission: 'binaryauthorization.attestors.verifyImageAttested', existing: () => ATTESTOR, missing: `${PROJECT}/attestors/no-such-attestor`,
      req: (n) => post(`/v1/${n}:validateAttestationOccurrence`, { attestation: ATTESTATION, occurrenceNote: NOTE, occurrenceResourceUri: IMAGE }),
    },
    { method: 'attestors.list (missing project)', permission: 'binaryauthorization.attestors.list', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => get(`/v1/${n}/attestors`) },
    { method: 'attestors.create (missing project)', permission: 'binaryauthorization.attestors.create', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => post(`/v1/${n}/attestors?attestorId=x`, attestorBody(NOTE)) },
    { method: 'getPolicy (missing project)', permission: 'binaryauthorization.policy.get', existing: () => POLICY, missing: 'projects/no-such-prj/policy', req: (n) => get(`/v1/${n}`) },
    { method: 'updatePolicy (missing project)', permission: 'binaryauthorization.policy.update', existing: () => POLICY, missing: 'projects/no-such-prj/policy', req: (n) => ({ method: 'PUT', path: `/v1/${n}`, body: ALLOW_ALL_POLICY }) },
    { method: 'policy.getIamPolicy (missing project)', permission: 'binaryauthorization.policy.getIamPolicy', existing: () => POLICY, missing: 'projects/no-such-prj/policy', req: (n) => iamMethodsOf(n).get },
    { method: 'notes.get', permission: 'containeranalysis.notes.get', existing: () => NOTE, missing: `${PROJECT}/notes/no-such-note`, req: (n) => get(`/v1/${n}`) },
    { method: 'notes.patch', permission: 'containeranalysis.notes.update', existing: () => NOTE, missing: `${PROJECT}/notes/no-such-note`, req: (n) => ({ method: 'PATCH', path: `/v1/${n}?updateMask=shortDescription`, body: { shortDescription: 'x' } }) },
    { method: 'notes.delete', permission: 'containeranalysis.notes.delete', existing: () => NOTE, missing: `${PROJECT}/notes/no-such-note`, req: (n) => ({ method: 'DELETE', path: `/v1/${n}` }) },
    { method: 'notes.getIamPolicy', permission: 'containeranalysis.notes.getIamPolicy', existing: () => NOTE, missing: `${PROJECT}/notes/no-such-note`, req: (n) => iamMethodsOf(n).get },
    { method: 'notes.occurrences.list', permission: 'containeranalysis.notes.listOccurrences', existing: () => NOTE, missing: `${PROJECT}/notes/no-such-note`, req: (n) => get(`/v1/${n}/occurrences`) },
    { method: 'notes.list (missing project)', permission: 'containeranalysis.notes.list', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => get(`/v1/${n}/notes`) },
    { method: 'occurrences.get', permission: 'containeranalysis.occurrences.get', existing: () => OCCURRENCE, missing: MISSING_OCCURRENCE, req: (n) => get(`/v1/${n}`) },
    { method: 'occurrences.delete', permission: 'containeranalysis.occurrences.delete', existing: () => OCCURRENCE, missing: MISSING_OCCURRENCE, req: (n) => ({ method: 'DELETE', path: `/v1/${n}` }) },
    { method: 'occurrences.getNotes', permission: 'containeranalysis.occurrences.get', existing: () => OCCURRENCE, missing: MISSING_OCCURRENCE, req: (n) => get(`/v1/${n}/notes`) },
    { method: 'keyRings.get', permission: 'cloudkms.keyRings.get', existing: () => RING, missing: `${LOCATION}/keyRings/no-such-ring`, req: (n) => get(`/v1/${n}`) },
    { method: 'keyRings.list (missing project)', permission: 'cloudkms.keyRings.list', existing: () => LOCATION, missing: 'projects/no-such-prj/locations/global', req: (n) => get(`/v1/${n}/keyRings`) },
    { method: 'cryptoKeys.get', permission: 'cloudkms.cryptoKeys.get', existing: () => KEY, missing: `${RING}/cryptoKeys/no-such-key`, req: (n) => get(`/v1/${n}`) },
    { method: 'cryptoKeys.create (missing ring)', permission: 'cloudkms.cryptoKeys.create', existing: () => RING, missing: `${LOCATION}/keyRings/no-such-ring`, req: (n) => post(`/v1/${n}/cryptoKeys?cryptoKeyId=x`, SIGNING_KEY) },
    { method: 'cryptoKeyVersions.list (missing key)', permission: 'cloudkms.cryptoKeyVersions.list', existing: () => KEY, missing: `${RING}/cryptoKeys/no-such-key`, req: (n) => get(`/v1/${n}/cryptoKeyVersions`) },
    { method: 'cryptoKeyVersions.get', permission: 'cloudkms.cryptoKeyVersions.get', existing: () => VERSION, missing: `${KEY}/cryptoKeyVersions/99`, req: (n) => get(`/v1/${n}`) },
    { method: 'cryptoKeyVersions.getPublicKey', permission: 'cloudkms.cryptoKeyVersions.viewPublicKey', existing: () => VERSION, missing: `${KEY}/cryptoKeyVersions/99`, req: (n) => get(`/v1/${n}/publicKey`) },
    { method: 'cryptoKeyVersions.asymmetricSign', permission: 'cloudkms.cryptoKeyVersions.useToSign', existing: () => VERSION, missing: `${KEY}/cryptoKeyVersions/99`, req: (n) => post(`/v1/${n}:asymmetricSign`, SHA256_DIGEST) },
    { method: 'cryptoKeyVersions.destroy', permission: 'cloudkms.cryptoKeyVersions.destroy', existing: () => VERSION, missing: `${KEY}/cryptoKeyVersions/99`, req: (n) => post(`/v1/${n}:destroy`) },
    { method: 'projects.get (resource manager)', permission: 'resourcemanager.projects.get', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => get(`/v1/${n}`) },
    { method: 'projects.getIamPolicy', permission: 'resourcemanager.projects.getIamPolicy', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => iamMethodsOf(n).get },
    { method: 'projects.setIamPolicy', permission: 'resourcemanager.projects.setIamPolicy', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => iamMethodsOf(n).set({ bindings: [] }) },
    { method: 'services.list', permission: 'serviceusage.services.list', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => get(`/v1/${n}/services`) },
    { method: 'services.enable', permission: 'serviceusage.services.enable', existing: () => PROJECT, missing: 'projects/no-such-prj', req: (n) => post(`/v1/${n}/services/cloudkms.googleapis.com:enable`) },
  ];

  for (const p of pairs) {
    it(`${p.method}: the same 403 for a missing resource as for an existing one`, async () => {
      const existing = await send(server, p.req(p.existing()), callers['nobody']!.token);
      const missing = await send(server, p.req(p.missing), callers['nobody']!.token);
      expectDenied(existing, p.permission, p.existing());
      expectDenied(missing, p.permission, p.missing);
      expect(missing.body).toEqual({ error: { ...existing.body.error, message: existing.body.error.message.replace(p.existing(), p.missing) } });
    });
  }

  // GAPIC clients may name the policy by project number. Whether a number belongs to a project,
  // and which, is as much the caller's business as whether an attestor exists.
  const byNumber: ReadonlyArray<{ method: string; permission: string; req: (name: string) => Req }> = [
    { method: 'v1 getPolicy', permission: 'binaryauthorization.policy.get', req: (n) => get(`/v1/${n}`) },
    { method: 'v1beta1 getPolicy', permission: 'binaryauthorization.policy.get', req: (n) => get(`/v1beta1/${n}`) },
    { method: 'v1 updatePolicy', permission: 'binaryauthorization.policy.update', req: (n) => ({ method: 'PUT', path: `/v1/${n}`, body: ALLOW_ALL_POLICY }) },
  ];
  for (const b of byNumber) {
    it(`${b.method} by project number: the same 403 for an existing number as for a missing one, naming the resource as asked`, async () => {
      const numbers = new Map<string, string>();
      for (const id of [P, 'attestors-prj', 'deployer-prj']) numbers.set(id, String((await asAdmin(get(`/tollgate/v1/projects/${id}`))).projectNumber));
      const existingNumber = numbers.get(P) as string;
      const absent = ['100000000001', '100000000002', '100000000003', '100000000004'].find((n) => ![...numbers.values()].includes(n)) as string;
      const existing = await send(server, b.req(`projects/${existingNumber}/policy`), callers['nobody']!.token);
      const missing = await send(server, b.req(`projects/${absent}/policy`), callers['nobody']!.token);
      expectDenied(missing, b.permission, `projects/${absent}/policy`);
      expectDenied(existing, b.permission, `projects/${existingNumber}/policy`);
    });
  }

  it('tollgate principals and tokens: the same 403 for a missing one as for an existing one', async () => {
    const nobody = callers['nobody']!.token;
    const p1 = await send(server, get('/tollgate/v1/principals/root@example.com'), nobody);
    const p2 = await send(server, get('/tollgate/v1/principals/no-such-principal@example.com'), nobody);
    expectForbidden(p1);
    expect(p2).toEqual(p1);
    const t1 = await send(server, get(`/tollgate/v1/tokens/${callers['root']!.tokenId}`), nobody);
    const t2 = await send(server, get('/tollgate/v1/tokens/0000000000000000'), nobody);
    expectForbidden(t1);
    expect(t2).toEqual(t1);
  });

  const holders: ReadonlyArray<{ method: string; role: string; missing: string; req: (n: string) => Req }> = [
    { method: 'attestors.get', role: R.attestorsViewer, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => get(`/v1/${n}`) },
    { method: 'notes.get', role: R.notesViewer, missing: `${PROJECT}/notes/no-such-note`, req: (n) => get(`/v1/${n}`) },
    { method: 'occurrences.get', role: R.occurrencesViewer, missing: MISSING_OCCURRENCE, req: (n) => get(`/v1/${n}`) },
    { method: 'keyRings.get', role: R.kmsViewer, missing: `${LOCATION}/keyRings/no-such-ring`, req: (n) => get(`/v1/${n}`) },
    { method: 'cryptoKeyVersions.get', role: R.kmsViewer, missing: `${KEY}/cryptoKeyVersions/99`, req: (n) => get(`/v1/${n}`) },
    { method: 'attestors.getIamPolicy', role: R.attestorsAdmin, missing: `${PROJECT}/attestors/no-such-attestor`, req: (n) => iamMethodsOf(n).get },
  ];
  for (const h of holders) {
    it(`${h.method}: only a caller holding the permission (${h.role}) learns NOT_FOUND`, async () => {
      const r = await send(server, h.req(h.missing), holder(h.role).token);
      expect(r.status, JSON.stringify(r.body)).toBe(404);
      expect(r.body.error).toMatchObject({ code: 404, status: 'NOT_FOUND' });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// A grant on one resource covers that resource (and what is below it) only

describe('resource-level grants are scoped', () => {
  it(`${R.attestorsViewer} on one attestor: that attestor only, no list, no write`, async () => {
    const a = await newAttestor();
    const b = await newAttestor();
    const c = callers['scoped']!;
    await grant(server, a, [[c.member, R.attestorsViewer]]);
    expectOk(await send(server, get(`/v1/${a}`), c.token));
    expectDenied(await send(server, get(`/v1/${b}`), c.token), 'binaryauthorization.attestors.get', b);
    expectDenied(await send(server, get(`/v1/${PROJECT}/attestors`), c.token), 'binaryauthorization.attestors.list', PROJECT);
    expectDenied(await send(server, { method: 'PUT', path: `/v1/${a}`, body: { name: a, ...attestorBody(NOTE) } }, c.token), 'binaryauthorization.attestors.update', a);
    expectDenied(await send(server, iamMethodsOf(a).get, c.token), 'binaryauthorization.attestors.getIamPolicy', a);
    // Nor the attestor's note.
    expectDenied(await send(server, get(`/v1/${NOTE}`), c.token), 'containeranalysis.notes.get', NOTE);
  });

  it('a deleted attestor takes its IAM policy with it: re-created, it grants nothing', async () => {
    const a = await newAttestor();
    const c = callers['recreated']!;
    await grant(server, a, [[c.member, R.attestorsViewer]]);
    expectOk(await send(server, get(`/v1/${a}`), c.token));
    await asAdmin({ method: 'DELETE', path: `/v1/${a}` });
    const [, project, , id] = a.split('/');
    await asAdmin(post(`/v1/projects/${project}/attestors?attestorId=${id}`, attestorBody(NOTE)));
    expectDenied(await send(server, get(`/v1/${a}`), c.token), 'binaryauthorization.attestors.get', a);
    expect((await readPolicy(server, a)).bindings ?? []).toEqual([]);
  });

  it('a deleted note takes its IAM policy with it: re-created, it grants nothing', async () => {
    const n = await newNote();
    const c = callers['recreated']!;
    await grant(server, n, [[c.member, R.notesViewer]]);
    expectOk(await send(server, get(`/v1/${n}`), c.token));
    await asAdmin({ method: 'DELETE', path: `/v1/${n}` });
    await asAdmin(post(`/v1/${PROJECT}/notes?noteId=${n.split('/')[3] as string}`, ATTESTATION_NOTE));
    expectDenied(await send(server, get(`/v1/${n}`), c.token), 'containeranalysis.notes.get', n);
  });

  it(`${R.kmsViewer} on a key ring covers its keys and versions, not another ring's`, async () => {
    const ring = await newKeyRing();
    const key = await newKey(ring);
    const c = callers['ringViewer']!;
    await grant(server, ring, [[c.member, R.kmsViewer]]);
    expectOk(await send(server, get(`/v1/${key}`), c.token));
    expectOk(await send(server, get(`/v1/${key}/cryptoKeyVersions/1`), c.token));
    expectDenied(await send(server, get(`/v1/${KEY}`), c.token), 'cloudkms.cryptoKeys.get', KEY);
    expectDenied(await send(server, get(`/v1/${LOCATION}/keyRings`), c.token), 'cloudkms.keyRings.list', LOCATION);
    // Viewing is not signing.
    expectDenied(await send(server, post(`/v1/${key}/cryptoKeyVersions/1:asymmetricSign`, SHA256_DIGEST), c.token), 'cloudkms.cryptoKeyVersions.useToSign', `${key}/cryptoKeyVersions/1`);
  });
});

// ---------------------------------------------------------------------------------------------
// Multi-project setup (reference §7.5, seed 003/004): attestor project and deployer project

describe('cross-project: an attestor in attestors-prj, a deployer from deployer-prj', () => {
  const XP = 'projects/attestors-prj';
  let attestor = '';
  let other = '';
  let note = '';
  const missing = `${XP}/attestors/no-such-attestor`;
  const requiring = (a: string): Req => ({
    method: 'PUT',
    path: '/v1/projects/deployer-prj/policy',
    body: { globalPolicyEvaluationMode: 'ENABLE', defaultAdmissionRule: { evaluationMode: 'REQUIRE_ATTESTATION', enforcementMode: 'ENFORCED_BLOCK_AND_AUDIT_LOG', requireAttestationsBy: [a] } },
  });
  let before: Res | undefined;

  beforeAll(async () => {
    note = await newNote('attestors-prj');
    attestor = await newAttestor('attestors-prj', note);
    other = await newAttestor('attestors-prj', note);
  });

  it('before the grant: the deployer cannot read the attestor, nor require it in its policy', async () => {
    const d = callers['deployer']!;
    expectOk(await send(server, get('/v1/projects/deployer-prj/policy'), d.token));
    expectDenied(await send(server, get(`/v1/${attestor}`), d.token), 'binaryauthorization.attestors.get', attestor);
    before = await send(server, requiring(attestor), d.token);
    expect(before.status, JSON.stringify(before.body)).toBe(400);
    expect(before.body.error.status).toBe('INVALID_ARGUMENT');
    expect(before.body.error.message).toContain(attestor);
    // The refusal does not say whether the attestor exists: same as for one that does not.
    const absent = await send(server, requiring(missing), d.token);
    expect(absent.status).toBe(400);
    expect(absent.body.error.message).toBe(before.body.error.message.replaceAll(attestor, missing));
  });

  it(`gcloud container binauthz attestors add-iam-policy-binding grants ${R.attestorsVerifier} on the attestor`, async () => {
    const id = attestor.split('/')[3] as string;
    const r = await server.gcloud(['container', 'binauthz', 'attestors', 'add-iam-policy-binding', id, '--project=attestors-prj', `--member=${callers['deployer']!.member}`, `--role=${R.attestorsVerifier}`, '--format=json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).bindings).toContainEqual({ role: R.attestorsVerifier, members: [callers['deployer']!.member] });
  });

  it('after the grant: the deployer reads and verifies against that attestor and requires it in its policy', async () => {
    const d = callers['deployer']!;
    const got = await send(server, get(`/v1/${attestor}`), d.token);
    expectOk(got);
    expect(got.body.name).toBe(attestor);
    const v = await send(server, post(`/v1/${attestor}:validateAttestationOccurrence`, { attestation: ATTESTATION, occurrenceNote: note, occurrenceResourceUri: IMAGE }), d.token);
    expectOk(v);
    const p = await send(server, requiring(attestor), d.token);
    expectOk(p);
    expect(p.body.defaultAdmissionRule.requireAttestationsBy).toEqual([attestor]);
    const t = await send(server, iamMethodsOf(attestor).test(['binaryauthorization.attestors.get', 'binaryauthorization.attestors.verifyImageAttested', 'binaryauthorization.attestors.update']), d.token);
    expect([...t.body.permissions].sort()).toEqual(['binaryauthorization.attestors.get', 'binaryauthorization.attestors.verifyImageAttested']);
  });

  it('after the grant: nothing else in attestors-prj', async () => {
    const d = callers['deployer']!;
    expectDenied(await send(server, get(`/v1/${other}`), d.token), 'binaryauthorization.attestors.get', other);
    expectDenied(await send(server, get(`/v1/${XP}/attestors`), d.token), 'binaryauthorization.attestors.list', XP);
    expectDenied(await send(server, { method: 'PUT', path: `/v1/${attestor}`, body: { name: attestor, ...attestorBody(note) } }, d.token), 'binaryauthorization.attestors.update', attestor);
    expectDenied(await send(server, { method: 'DELETE', path: `/v1/${attestor}` }, d.token), 'binaryauthorization.attestors.delete', attestor);
    expectDenied(await send(server, iamMethodsOf(attestor).get, d.token), 'binaryauthorization.attestors.getIamPolicy', attestor);
    expectDenied(await send(server, get(`/v1/${note}`), d.token), 'containeranalysis.notes.get', note);
    expectDenied(await send(server, get(`/v1/${XP}/policy`), d.token), 'binaryauthorization.policy.get', `${XP}/policy`);
    // A missing attestor is still refused exactly as before the grant (no existence leak).
    const absent = await send(server, requiring(missing), d.token);
    expect(absent.status).toBe(400);
    expect(absent.body.error.message).toBe((before as Res).body.error.message.replaceAll(attestor, missing));
  });

  it(`policy editors with ${R.attestorsViewer} on the attestor project (§7.5) may require any of its attestors`, async () => {
    const editor = holder(R.policyEditor);
    await grant(server, XP, [[editor.member, R.attestorsViewer]]);
    const r = await send(server, { ...requiring(other), path: `/v1/${POLICY}` }, editor.token);
    expectOk(r);
    // Restore demo's policy to allow-all for anyone reading it later.
    await asAdmin({ method: 'PUT', path: `/v1/${POLICY}`, body: ALLOW_ALL_POLICY });
  });
});
