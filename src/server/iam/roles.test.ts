import { describe, expect, it } from 'vitest';
import { ALL_PERMISSIONS, KNOWN_ROLES, isKnownPermission, permissionsOf } from './roles.js';

const has = (role: string, permission: string) => permissionsOf(role)?.has(permission) ?? false;

describe('roles', () => {
  it('knows the roles the tutorials and the separation-of-duties recipe use', () => {
    for (const role of [
      'roles/binaryauthorization.attestorsAdmin',
      'roles/binaryauthorization.attestorsVerifier',
      'roles/binaryauthorization.policyEditor',
      'roles/binaryauthorization.policyEvaluator',
      'roles/binaryauthorization.serviceAgent',
      'roles/containeranalysis.notes.attacher',
      'roles/containeranalysis.notes.occurrences.viewer',
      'roles/containeranalysis.notesEditor',
      'roles/containeranalysis.occurrences.editor',
      'roles/cloudkms.signerVerifier',
      'roles/cloudkms.publicKeyViewer',
      'roles/run.invoker',
      'roles/iam.serviceAccountUser',
      'roles/logging.privateLogViewer',
      'roles/owner',
      'roles/editor',
      'roles/viewer',
    ]) {
      expect(KNOWN_ROLES, role).toContain(role);
    }
    expect(permissionsOf('roles/binaryauthorization.superPowers')).toBeUndefined();
    expect([...KNOWN_ROLES]).toEqual([...KNOWN_ROLES].sort());
  });

  it('grants what Google documents', () => {
    expect(has('roles/binaryauthorization.attestorsVerifier', 'binaryauthorization.attestors.verifyImageAttested')).toBe(true);
    expect(has('roles/binaryauthorization.attestorsVerifier', 'binaryauthorization.attestors.update')).toBe(false);
    expect(has('roles/binaryauthorization.attestorsEditor', 'binaryauthorization.attestors.setIamPolicy')).toBe(false);
    expect(has('roles/binaryauthorization.attestorsAdmin', 'binaryauthorization.attestors.setIamPolicy')).toBe(true);
    expect(has('roles/binaryauthorization.policyEvaluator', 'binaryauthorization.policy.evaluate')).toBe(true);
    expect(has('roles/binaryauthorization.policyEvaluator', 'binaryauthorization.policy.update')).toBe(false);
    expect(has('roles/binaryauthorization.policyViewer', 'binaryauthorization.policy.evaluate')).toBe(true);
    expect(has('roles/binaryauthorization.policyEditor', 'binaryauthorization.policy.setIamPolicy')).toBe(false);
    expect(has('roles/containeranalysis.notes.attacher', 'containeranalysis.notes.attachOccurrence')).toBe(true);
    expect(has('roles/containeranalysis.notes.attacher', 'containeranalysis.occurrences.create')).toBe(false);
    expect(permissionsOf('roles/containeranalysis.notesEditor')).toEqual(permissionsOf('roles/containeranalysis.notes.editor'));
    expect(has('roles/cloudkms.signer', 'cloudkms.cryptoKeyVersions.useToSign')).toBe(true);
    expect(has('roles/cloudkms.signer', 'cloudkms.cryptoKeyVersions.viewPublicKey')).toBe(false);
    expect(has('roles/cloudkms.admin', 'cloudkms.cryptoKeyVersions.useToSign')).toBe(false);
    expect(has('roles/cloudkms.admin', 'cloudkms.cryptoKeyVersions.destroy')).toBe(true);
    expect(has('roles/run.invoker', 'run.routes.invoke')).toBe(true);
    expect(has('roles/logging.viewer', 'logging.privateLogEntries.list')).toBe(false);
  });

  it('derives the basic roles from the catalog', () => {
    const owner = permissionsOf('roles/owner');
    expect(owner).toEqual(ALL_PERMISSIONS);
    expect(has('roles/editor', 'binaryauthorization.policy.update')).toBe(true);
    expect(has('roles/editor', 'cloudkms.cryptoKeyVersions.useToSign')).toBe(true);
    for (const p of permissionsOf('roles/editor') ?? []) expect(p).not.toMatch(/setIamPolicy$/);
    expect(has('roles/viewer', 'binaryauthorization.attestors.get')).toBe(true);
    expect(has('roles/viewer', 'resourcemanager.projects.getIamPolicy')).toBe(true);
    expect(has('roles/viewer', 'binaryauthorization.attestors.create')).toBe(false);
    expect(has('roles/viewer', 'cloudkms.cryptoKeyVersions.useToSign')).toBe(false);
    expect(isKnownPermission('serviceusage.services.enable')).toBe(true);
    expect(isKnownPermission('binaryauthorization.attestors.fly')).toBe(false);
  });
});
