import { describe, expect, it } from 'vitest';
import { readRepoFile } from '../../../test/support/fixtures.js';
import { ATTESTATION_REJECTION_CODES } from '../attestation/model.js';
import { DECISION_SCHEMA_VERSION } from './decision.js';

// The decision schema is a contract with CI scripts: every code the engine can emit is documented.
describe('docs/decision-schema.md', () => {
  const doc = readRepoFile('docs', 'decision-schema.md');
  it('documents the schema version and every code', () => {
    const codes = [
      DECISION_SCHEMA_VERSION,
      ...ATTESTATION_REJECTION_CODES, 'DIGEST_MISMATCH',
      'SYSTEM_POLICY', 'EXEMPT_PATTERN', 'ALWAYS_ALLOW', 'ATTESTED', 'ALWAYS_DENY', 'DIGEST_REQUIRED', 'NOT_ATTESTED', 'INVALID_IMAGE', 'EVALUATION_FAILED',
      'NO_ATTESTATIONS', 'NO_VALID_ATTESTATIONS', 'ATTESTOR_NOT_FOUND', 'ATTESTOR_NOT_ACCESSIBLE', 'EVIDENCE_UNAVAILABLE',
      'ALLOWED', 'DRY_RUN', 'BREAKGLASS', 'DENIED',
    ];
    for (const code of codes) expect(doc, code).toContain(`\`${code}\``);
  });
});
