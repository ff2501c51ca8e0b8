/**
 * Identity and IAM, as the rest of the server uses them. Implemented in iam-service.ts over the
 * store; permissions and roles are Google's (reference §7).
 */
import type { Principal } from './principal.js';

/** Google's IAM policy shape: `{version, bindings[{role, members[], condition?}], etag}` (etag is base64). */
export interface IamPolicy {
  readonly version?: number;
  readonly bindings?: readonly IamBinding[];
  readonly etag?: string;
}

export interface IamBinding {
  readonly role: string;
  readonly members: readonly string[];
  readonly condition?: { readonly expression?: string; readonly title?: string; readonly description?: string; readonly location?: string };
}

export interface Iam {
  /** Resolves a bearer token; undefined when unknown, expired or revoked. */
  authenticate(token: string): Promise<Principal | undefined>;

  /**
   * Throws ApiError PERMISSION_DENIED unless the principal holds `permission` on `resource` or on
   * an ancestor of it (`projects/P/attestors/A` → `projects/P`; crypto key versions → key → key
   * ring → project). The message names the permission and resource but never says whether the
   * resource exists.
   */
  require(principal: Principal, permission: string, resource: string): Promise<void>;

  /** Same check, as a boolean. Members may be any IAM member string (`serviceAccount:…`). */
  memberHas(member: string, permission: string, resource: string): Promise<boolean>;

  /** The subset of `permissions` the principal holds on `resource`. */
  testPermissions(principal: Principal, permissions: readonly string[], resource: string): Promise<string[]>;

  /** The IAM policy set directly on `resource` (empty policy with an etag when none was set). */
  getPolicy(resource: string): Promise<IamPolicy>;

  /**
   * Replaces the policy on `resource`. A policy carrying an etag that is not the current one is
   * refused with ABORTED; roles must be known (INVALID_ARGUMENT names the unknown role).
   */
  setPolicy(resource: string, policy: IamPolicy): Promise<IamPolicy>;

  /** Removes the policy of a deleted resource, so a re-created resource starts with none. */
  deletePolicy(resource: string): Promise<void>;
}
