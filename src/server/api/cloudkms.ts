/**
 * Cloud KMS v1 (reference §5, gcloud-compat §4): key rings, ASYMMETRIC_SIGN crypto keys and their
 * versions, getPublicKey and asymmetricSign, IAM on key rings and keys, and the locations gcloud may
 * ask for. Every method checks the caller's permission (Google's names) before it says whether the
 * resource exists; writes go to an existing project (or one a superuser creates on the fly) and
 * leave an Admin Activity entry in the same transaction. The key service itself is
 * kms/local-kms.ts; docs/kms.md describes what is supported.
 */
import type { AppDeps } from '../app-deps.js';
import { recordAdminActivity } from '../audit/admin-activity.js';
import { invalidArgument, notFound } from '../errors.js';
import { Router, type HandlerResult, type RequestContext } from '../http/router.js';
import { iamMethodHandlers } from '../iam/iam-methods.js';
import type { Principal } from '../iam/principal.js';
import { isValidLocationId, LocalKms, parseAsymmetricSignRequest, requireKmsId, type AfterWrite, type ListResult } from '../kms/local-kms.js';
import type { MasterKey } from '../kms/master-key.js';
import { projectForWrite } from '../services/projects.js';
import type { JsonObject } from '../store/store.js';
import { objectBody, pageOf, principalOf, projectOf } from './common.js';

const SERVICE_NAME = 'cloudkms.googleapis.com';
const KMS_SERVICE = 'google.cloud.kms.v1.KeyManagementService';

const LOCATION = 'projects/*/locations/*';
const KEY_RING = `${LOCATION}/keyRings/*`;
const CRYPTO_KEY = `${KEY_RING}/cryptoKeys/*`;
const VERSION = `${CRYPTO_KEY}/cryptoKeyVersions/*`;

/** Locations `projects/P/locations` lists (any other valid location id can be used too). */
const KNOWN_LOCATIONS: readonly (readonly [string, string])[] = [
  ['global', 'Global'],
  ['us', 'United States'],
  ['europe', 'Europe'],
  ['asia', 'Asia'],
  ['us-central1', 'Iowa'],
  ['us-east1', 'South Carolina'],
  ['us-east4', 'Northern Virginia'],
  ['us-west1', 'Oregon'],
  ['europe-west1', 'Belgium'],
  ['europe-west4', 'Netherlands'],
  ['asia-east1', 'Taiwan'],
  ['asia-northeast1', 'Tokyo'],
];

export function cloudKmsRouter(deps: AppDeps, masterKey: MasterKey): Router {
  const kms = new LocalKms(deps.store, masterKey);
  const router = new Router('cloudkms');
  const keyRingIam = iamMethodHandlers(deps, {
    getPermission: 'cloudkms.keyRings.getIamPolicy',
    setPermission: 'cloudkms.keyRings.setIamPolicy',
    serviceName: SERVICE_NAME,
    methodPrefix: 'google.iam.v1.IAMPolicy',
    exists: (name) => kms.exists('keyRing', name),
  });
  const cryptoKeyIam = iamMethodHandlers(deps, {
    getPermission: 'cloudkms.cryptoKeys.getIamPolicy',
    setPermission: 'cloudkms.cryptoKeys.setIamPolicy',
    serviceName: SERVICE_NAME,
    methodPrefix: 'google.iam.v1.IAMPolicy',
    exists: (name) => kms.exists('cryptoKey', name),
  });
  const h = new Handlers(deps, kms);

  router
    .get('/v1/{name=projects/*}/locations', (ctx) => h.listLocations(ctx))
    .get(`/v1/{name=${LOCATION}}`, (ctx) => h.getLocation(ctx))
    // key rings
    .post(`/v1/{parent=${LOCATION}}/keyRings`, (ctx) => h.createKeyRing(ctx))
    .get(`/v1/{parent=${LOCATION}}/keyRings`, (ctx) => h.listKeyRings(ctx))
    .get(`/v1/{name=${KEY_RING}}`, (ctx) => h.getKeyRing(ctx))
    .get(`/v1/{resource=${KEY_RING}}:getIamPolicy`, keyRingIam.getIamPolicy)
    .post(`/v1/{resource=${KEY_RING}}:getIamPolicy`, keyRingIam.getIamPolicy)
    .post(`/v1/{resource=${KEY_RING}}:setIamPolicy`, keyRingIam.setIamPolicy)
    .post(`/v1/{resource=${KEY_RING}}:testIamPermissions`, keyRingIam.testIamPermissions)
    // crypto keys
    .post(`/v1/{parent=${KEY_RING}}/cryptoKeys`, (ctx) => h.createCryptoKey(ctx))
    .get(`/v1/{parent=${KEY_RING}}/cryptoKeys`, (ctx) => h.listCryptoKeys(ctx))
    .get(`/v1/{name=${CRYPTO_KEY}}`, (ctx) => h.getCryptoKey(ctx))
    .patch(`/v1/{name=${CRYPTO_KEY}}`, (ctx) => h.updateCryptoKey(ctx))
    .get(`/v1/{resource=${CRYPTO_KEY}}:getIamPolicy`, cryptoKeyIam.getIamPolicy)
    .post(`/v1/{resource=${CRYPTO_KEY}}:getIamPolicy`, cryptoKeyIam.getIamPolicy)
    .post(`/v1/{resource=${CRYPTO_KEY}}:setIamPolicy`, cryptoKeyIam.setIamPolicy)
    .post(`/v1/{resource=${CRYPTO_KEY}}:testIamPermissions`, cryptoKeyIam.testIamPermissions)
    // versions
    .post(`/v1/{parent=${CRYPTO_KEY}}/cryptoKeyVersions`, (ctx) => h.createVersion(ctx))
    .get(`/v1/{parent=${CRYPTO_KEY}}/cryptoKeyVersions`, (ctx) => h.listVersions(ctx))
    .get(`/v1/{name=${VERSION}}`, (ctx) => h.getVersion(ctx))
    .patch(`/v1/{name=${VERSION}}`, (ctx) => h.updateVersion(ctx))
    .post(`/v1/{name=${VERSION}}:destroy`, (ctx) => h.destroyVersion(ctx))
    .post(`/v1/{name=${VERSION}}:restore`, (ctx) => h.restoreVersion(ctx))
    .get(`/v1/{name=${VERSION}}/publicKey`, (ctx) => h.getPublicKey(ctx))
    .post(`/v1/{name=${VERSION}}:asymmetricSign`, (ctx) => h.asymmetricSign(ctx));
  return router;
}

function param(ctx: RequestContext, name: string): string {
  return ctx.params[name] as string;
}

/** A query parameter by its JSON name or its proto field name. */
function query(ctx: RequestContext, camel: string): string | null {
  return ctx.query.get(camel) ?? ctx.query.get(camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
}

function boolQuery(ctx: RequestContext, camel: string): boolean {
  const v = query(ctx, camel);
  return v === 'true' || v === '1';
}

function listBody(field: string, r: ListResult): JsonObject {
  // proto3 JSON, as Google answers: an empty list and a zero total are left out.
  return {
    ...(r.items.length > 0 ? { [field]: r.items } : {}),
    ...(r.nextPageToken === undefined ? {} : { nextPageToken: r.nextPageToken }),
    ...(r.totalSize > 0 ? { totalSize: r.totalSize } : {}),
  };
}

function locationView(project: string, id: string, displayName?: string): JsonObject {
  return {
    name: `projects/${project}/locations/${id}`,
    locationId: id,
    ...(displayName === undefined ? {} : { displayName }),
    metadata: { '@type': 'type.googleapis.com/google.cloud.kms.v1.LocationMetadata', hsmAvailable: false, ekmAvailable: false },
  };
}

class Handlers {
  constructor(
    private readonly deps: AppDeps,
    private readonly kms: LocalKms,
  ) {}

  private async check(ctx: RequestContext, permission: string, resource: string): Promise<Principal> {
    const principal = principalOf(ctx);
    await this.deps.iam.require(principal, permission, resource);
    return principal;
  }

  /** IAM, then the project the write goes to (created on the fly for a superuser). */
  private async checkWrite(ctx: RequestContext, permission: string, resource: string, validate?: () => void): Promise<Principal> {
    const principal = await this.check(ctx, permission, resource);
    validate?.();
    await projectForWrite(this.deps.store, projectOf(resource), principal);
    return principal;
  }

  /** The Admin Activity entry, written in the write's transaction; its resource is the one written. */
  private audit(principal: Principal, method: string, request: unknown): AfterWrite {
    return (tx, result) => {
      const resourceName = String(result['name']);
      return recordAdminActivity(tx, {
        serviceName: SERVICE_NAME,
        methodName: `${KMS_SERVICE}.${method}`,
        resourceName,
        project: projectOf(resourceName),
        principal,
        request,
        response: { name: resourceName, ...(typeof result['state'] === 'string' ? { state: result['state'] } : {}) },
      });
    };
  }

  // --- locations ------------------------------------------------------------------------------

  async listLocations(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.locations.list', name);
    const project = projectOf(name);
    return { body: { locations: KNOWN_LOCATIONS.map(([id, display]) => locationView(project, id, display)) } };
  }

  async getLocation(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.locations.get', name);
    const id = name.split('/')[3] as string;
    if (!isValidLocationId(id)) throw notFound(`Location ${name} not found.`);
    const known = KNOWN_LOCATIONS.find(([l]) => l === id);
    return { body: locationView(projectOf(name), id, known?.[1]) };
  }

  // --- key rings ------------------------------------------------------------------------------

  async createKeyRing(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    const keyRingId = query(ctx, 'keyRingId');
    const principal = await this.checkWrite(ctx, 'cloudkms.keyRings.create', parent, () => {
      const location = parent.split('/')[3] as string;
      if (!isValidLocationId(location)) throw invalidArgument(`parent: "${location}" is not a valid location (use global or a region such as us-central1)`);
      requireKmsId(keyRingId, 'keyRingId');
    });
    await objectBody(ctx); // a KeyRing has no settable fields; the body only has to be JSON
    const body = await this.kms.createKeyRing(parent, keyRingId, this.audit(principal, 'CreateKeyRing', { parent, keyRingId }));
    return { body };
  }

  async getKeyRing(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.keyRings.get', name);
    return { body: await this.kms.getKeyRing(name) };
  }

  async listKeyRings(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    await this.check(ctx, 'cloudkms.keyRings.list', parent);
    return { body: listBody('keyRings', await this.kms.listKeyRings(parent, pageOf(ctx.query, { size: 100 }))) };
  }

  // --- crypto keys ----------------------------------------------------------------------------

  async createCryptoKey(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    const cryptoKeyId = query(ctx, 'cryptoKeyId');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeys.create', parent, () => requireKmsId(cryptoKeyId, 'cryptoKeyId'));
    const body = await objectBody(ctx);
    const skipInitialVersionCreation = boolQuery(ctx, 'skipInitialVersionCreation');
    const key = await this.kms.createCryptoKey(
      parent,
      cryptoKeyId,
      body,
      { skipInitialVersionCreation },
      this.audit(principal, 'CreateCryptoKey', { parent, cryptoKeyId, skipInitialVersionCreation, cryptoKey: body }),
    );
    return { body: key };
  }

  async getCryptoKey(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.cryptoKeys.get', name);
    return { body: await this.kms.getCryptoKey(name) };
  }

  async listCryptoKeys(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    await this.check(ctx, 'cloudkms.cryptoKeys.list', parent);
    return { body: listBody('cryptoKeys', await this.kms.listCryptoKeys(parent, pageOf(ctx.query, { size: 100 }))) };
  }

  async updateCryptoKey(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeys.update', name);
    const body = await objectBody(ctx);
    const updateMask = query(ctx, 'updateMask');
    return { body: await this.kms.updateCryptoKey(name, body, updateMask, this.audit(principal, 'UpdateCryptoKey', { cryptoKey: { ...body, name }, updateMask })) };
  }

  // --- versions -------------------------------------------------------------------------------

  async createVersion(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeyVersions.create', parent);
    const body = await objectBody(ctx);
    return { body: await this.kms.createCryptoKeyVersion(parent, body, this.audit(principal, 'CreateCryptoKeyVersion', { parent })) };
  }

  async listVersions(ctx: RequestContext): Promise<HandlerResult> {
    const parent = param(ctx, 'parent');
    await this.check(ctx, 'cloudkms.cryptoKeyVersions.list', parent);
    const page = pageOf(ctx.query, { size: 100 });
    return { body: listBody('cryptoKeyVersions', await this.kms.listCryptoKeyVersions(parent, page, query(ctx, 'filter'))) };
  }

  async getVersion(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.cryptoKeyVersions.get', name);
    return { body: await this.kms.getCryptoKeyVersion(name) };
  }

  async updateVersion(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeyVersions.update', name);
    const body = await objectBody(ctx);
    const updateMask = query(ctx, 'updateMask');
    const audit = this.audit(principal, 'UpdateCryptoKeyVersion', { cryptoKeyVersion: { name, state: body['state'] ?? null }, updateMask });
    return { body: await this.kms.updateCryptoKeyVersion(name, body, updateMask, audit) };
  }

  async destroyVersion(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeyVersions.destroy', name);
    await objectBody(ctx);
    return { body: await this.kms.destroyCryptoKeyVersion(name, this.audit(principal, 'DestroyCryptoKeyVersion', { name })) };
  }

  async restoreVersion(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    const principal = await this.checkWrite(ctx, 'cloudkms.cryptoKeyVersions.restore', name);
    await objectBody(ctx);
    return { body: await this.kms.restoreCryptoKeyVersion(name, this.audit(principal, 'RestoreCryptoKeyVersion', { name })) };
  }

  async getPublicKey(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    await this.check(ctx, 'cloudkms.cryptoKeyVersions.viewPublicKey', name);
    return { body: await this.kms.getPublicKey(name, query(ctx, 'publicKeyFormat')) };
  }

  async asymmetricSign(ctx: RequestContext): Promise<HandlerResult> {
    const name = param(ctx, 'name');
    const principal = await this.check(ctx, 'cloudkms.cryptoKeyVersions.useToSign', name);
    const request = parseAsymmetricSignRequest(await objectBody(ctx));
    const response = await this.kms.asymmetricSign(name, request);
    // The audit entry says what was signed with, never what was signed: no digest, no data.
    await recordAdminActivity(this.deps.store, {
      serviceName: SERVICE_NAME,
      methodName: `${KMS_SERVICE}.AsymmetricSign`,
      resourceName: name,
      project: projectOf(name),
      principal,
      request: {
        name,
        ...(request.digest === undefined ? {} : { digestAlgorithm: request.digest.algorithm }),
        ...(request.data === undefined ? {} : { dataLength: request.data.length }),
        integrityChecked: request.digestCrc32c !== undefined || request.dataCrc32c !== undefined,
      },
      response: { name, signatureCrc32c: response.signatureCrc32c },
    });
    return { body: response };
  }
}
