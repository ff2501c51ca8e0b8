/**
 * Projects: the unit every Google resource lives in. A project comes into being when an admin
 * first writes to it, or with `tollgate projects create`. Its number is random, fixed at creation,
 * and names its service agents.
 */
import { randomInt } from 'node:crypto';
import { ApiError } from '../errors.js';
import type { Principal } from '../iam/principal.js';
import { StoreAlreadyExists, type StoreOps, type StoredResource } from '../store/store.js';

export interface Project {
  readonly projectId: string;
  readonly projectNumber: string;
  readonly createTime: string;
}

const PROJECT_ID = /^[a-z](?:[a-z0-9-]{0,28}[a-z0-9])?$/;

export function isValidProjectId(id: string): boolean {
  return PROJECT_ID.test(id);
}

export async function getProject(store: StoreOps, projectId: string): Promise<Project | undefined> {
  const r = await store.get('project', `projects/${projectId}`);
  return r === undefined ? undefined : toProject(r);
}

/** Creates the project if missing (idempotent, safe against a concurrent creator). */
export async function ensureProject(store: StoreOps, projectId: string): Promise<Project> {
  const existing = await getProject(store, projectId);
  if (existing !== undefined) return existing;
  if (!isValidProjectId(projectId)) throw new ApiError('INVALID_ARGUMENT', `"${projectId}" is not a valid project id (a lowercase letter, then up to 29 lowercase letters, digits or hyphens)`);
  const projectNumber = String(randomInt(100_000_000_000, 999_999_999_999));
  try {
    return toProject(await store.create({ kind: 'project', name: `projects/${projectId}`, parent: '', k1: projectNumber, body: { projectId, projectNumber } }));
  } catch (e) {
    if (e instanceof StoreAlreadyExists) {
      const p = await getProject(store, projectId);
      if (p !== undefined) return p;
    }
    throw e;
  }
}

/**
 * The project a write goes to: created on the fly for a superuser (so a fresh server works with
 * the tutorials as they are), NOT_FOUND for anyone else. Callers check IAM before this.
 */
export async function projectForWrite(store: StoreOps, projectId: string, principal: Principal): Promise<Project> {
  const p = await getProject(store, projectId);
  if (p !== undefined) return p;
  if (principal.superuser) return ensureProject(store, projectId);
  throw new ApiError('NOT_FOUND', `Project ${projectId} not found`);
}

/** The Binary Authorization service agent of a project (the attestors' delegation account). */
export function binauthzServiceAgent(project: Project): string {
  return `service-${project.projectNumber}@gcp-sa-binaryauthorization.iam.gserviceaccount.com`;
}

/** The Compute Engine default service account the tutorials grant roles to. */
export function computeDefaultServiceAccount(project: Project): string {
  return `${project.projectNumber}-compute@developer.gserviceaccount.com`;
}

function toProject(r: StoredResource): Project {
  return { projectId: String(r.body['projectId']), projectNumber: String(r.body['projectNumber']), createTime: r.createTime };
}
