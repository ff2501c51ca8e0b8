/**
 * The offline CLI end to end: the built `tollgate` binary, real files, real exit codes.
 * `npm test` builds before it runs the tests.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/fixtures.js';

const BIN = join(ROOT, 'dist', 'cli', 'main.js');
const EXAMPLES = join(ROOT, 'examples');
const SIGNED = 'us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
const UNSIGNED = `us-docker.pkg.dev/demo/apps/hello@sha256:${'0'.repeat(64)}`;

function tollgate(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: ROOT });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const offline = (...rest: string[]) => tollgate('evaluate', '--offline', '--policy', join(EXAMPLES, 'policy.yaml'), '--evidence', join(EXAMPLES, 'evidence'), ...rest);

describe('tollgate evaluate --offline', () => {
  it('allows the signed example image (exit 0)', () => {
    const r = offline(SIGNED);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALLOWED/);
    expect(r.stdout).toContain('projects/demo/attestors/build-attestor: satisfied');
  });

  it('denies an unsigned digest (exit 1) with Google\'s message', () => {
    const r = offline(UNSIGNED);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^DENIED/);
    expect(r.stdout).toContain(`Image ${UNSIGNED} denied by Binary Authorization default admission rule. Image ${UNSIGNED} denied by attestor projects/demo/attestors/build-attestor: No attestations found`);
  });

  it('prints the documented JSON decision', () => {
    const r = offline('--format', 'json', SIGNED, 'gcr.io/google-samples/hello-app:1.0', 'us-docker.pkg.dev/demo/apps/hello:latest');
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as { schemaVersion: string; allowed: boolean; verdict: { kind: string }; images: { reason: string }[] };
    expect(d.schemaVersion).toBe('tollgate.dev/decision/v1');
    expect(d.allowed).toBe(false);
    expect(d.images.map((i) => i.reason)).toEqual(['ATTESTED', 'EXEMPT_PATTERN', 'DIGEST_REQUIRED']);
  });

  it('dry run and breakglass allow (exit 0)', () => {
    const bg = offline('--breakglass', 'INC-7: hotfix', '--format', 'json', UNSIGNED);
    expect(bg.code).toBe(0);
    expect(JSON.parse(bg.stdout)).toMatchObject({ allowed: true, verdict: { kind: 'BREAKGLASS', justification: 'INC-7: hotfix', wouldHaveBeen: 'DENIED' } });
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    const dry = join(dir, 'dry.yaml');
    writeFileSync(dry, 'defaultAdmissionRule:\n  evaluationMode: ALWAYS_DENY\n  enforcementMode: DRYRUN_AUDIT_LOG_ONLY\n');
    const r = tollgate('evaluate', '--offline', '--policy', dry, UNSIGNED);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ALLOWED \(dry run\)/);
  });

  it('applies cluster rules with --cluster, and Cloud Run ignores them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    const p = join(dir, 'p.yaml');
    writeFileSync(p, [
      'clusterAdmissionRules:',
      '  us-east1-b.prod:',
      '    evaluationMode: ALWAYS_DENY',
      '    enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG',
      'defaultAdmissionRule:',
      '  evaluationMode: ALWAYS_ALLOW',
      '  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG',
      '',
    ].join('\n'));
    expect(tollgate('evaluate', '--offline', '--policy', p, '--cluster', 'us-east1-b.prod', UNSIGNED).code).toBe(1);
    expect(tollgate('evaluate', '--offline', '--policy', p, '--cluster', 'us-east1-b.dev', UNSIGNED).code).toBe(0);
    expect(tollgate('evaluate', '--offline', '--policy', p, '--platform', 'cloudrun', '--cluster', 'us-east1-b.prod', UNSIGNED).code).toBe(0);
  });

  it('bad input exits 2: malformed image, invalid policy, unreadable evidence, bad flags', () => {
    expect(offline('Not A Valid Image!!').code).toBe(2);
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'defaultAdmissionRule:\n  evaluationMode: SOMETIMES\n');
    const r = tollgate('evaluate', '--offline', '--policy', bad, SIGNED);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('defaultAdmissionRule.evaluationMode');
    expect(tollgate('evaluate', '--offline', '--policy', join(dir, 'missing.yaml'), SIGNED).code).toBe(2);
    expect(tollgate('evaluate', '--offline', '--policy', join(EXAMPLES, 'policy.yaml'), '--evidence', join(dir, 'nowhere'), SIGNED).code).toBe(2);
    expect(offline('--platform', 'mainframe', SIGNED).code).toBe(2);
    expect(tollgate('evaluate').code).toBe(2);
    expect(tollgate('no-such-command').code).toBe(2);
  });

  it('reads a corrupted evidence file as bad input, and a forged attestation as a denial', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    cpSync(join(EXAMPLES, 'evidence'), join(dir, 'evidence'), { recursive: true });
    writeFileSync(join(dir, 'evidence', 'occurrences', 'broken.json'), '{ not json');
    expect(tollgate('evaluate', '--offline', '--policy', join(EXAMPLES, 'policy.yaml'), '--evidence', join(dir, 'evidence'), SIGNED).code).toBe(2);
    writeFileSync(join(dir, 'evidence', 'occurrences', 'broken.json'), JSON.stringify({
      name: 'projects/demo/occurrences/forged', kind: 'ATTESTATION', noteName: 'projects/demo/notes/build-note', resourceUri: UNSIGNED,
      attestation: { serializedPayload: 'e30', signatures: [{ publicKeyId: 'ni:///sha-256;forged', signature: 'AAAA' }] },
    }));
    const r = tollgate('evaluate', '--offline', '--policy', join(EXAMPLES, 'policy.yaml'), '--evidence', join(dir, 'evidence'), '--format', 'json', UNSIGNED);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('NO_MATCHING_KEY');
  });
});

describe('tollgate policy validate', () => {
  it('exit 0 for a valid policy', () => {
    const r = tollgate('policy', 'validate', join(EXAMPLES, 'policy.yaml'));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid policy');
  });

  it('exit 1 with every problem and its path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tollgate-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, [
      'admissionWhitelistPatterns:',
      '- namePattern: gcr.io/p/n*x',
      'defaultAdmissionRule:',
      '  evaluationMode: REQUIRE_ATTESTATION',
      '  enforcementMode: ENFORCED_BLOCK_AND_AUDIT_LOG',
      'colour: blue',
      '',
    ].join('\n'));
    const r = tollgate('policy', 'validate', bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('admissionWhitelistPatterns[0].namePattern');
    expect(r.stdout).toContain('defaultAdmissionRule.requireAttestationsBy');
    expect(r.stdout).toContain('colour');
    const json = tollgate('policy', 'validate', '--format', 'json', bad);
    expect(json.code).toBe(1);
    expect((JSON.parse(json.stdout) as { problems: unknown[] }).problems.length).toBeGreaterThanOrEqual(3);
  });

  it('exit 2 for an unreadable file', () => {
    expect(tollgate('policy', 'validate', '/nonexistent/policy.yaml').code).toBe(2);
  });
});

describe('tollgate create-signature-payload', () => {
  it('prints gcloud\'s bytes', () => {
    const r = tollgate('create-signature-payload', `--artifact-url=https://${SIGNED}`);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe([
      '{',
      '  "critical": {',
      '    "identity": {',
      '      "docker-reference": "us-docker.pkg.dev/demo/apps/hello"',
      '    },',
      '    "image": {',
      '      "docker-manifest-digest": "sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706"',
      '    },',
      '    "type": "Google cloud binauthz container signature"',
      '  }',
      '}',
      '',
    ].join('\n'));
  });

  it('exit 2 for a tag', () => {
    expect(tollgate('create-signature-payload', '--artifact-url=gcr.io/p/app:v1').code).toBe(2);
  });
});
