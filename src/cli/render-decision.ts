/** Human-readable rendering of a Decision (the JSON form is the Decision itself). */
import type { AttestorResult, Decision, ImageDecision } from '../core/evaluation/decision.js';

export function renderDecision(d: Decision): string {
  const lines: string[] = [];
  lines.push(headline(d));
  const ctx = Object.entries(d.context).map(([k, v]) => `${k}=${String(v)}`).join(' ');
  lines.push(`  context: ${ctx}`);
  for (const image of d.images) lines.push(...renderImage(image));
  return `${lines.join('\n')}\n`;
}

function headline(d: Decision): string {
  switch (d.verdict.kind) {
    case 'ALLOWED':
      return 'ALLOWED: every image is allowed by the policy';
    case 'DRY_RUN':
      return 'ALLOWED (dry run): the policy would deny this deployment, but the denying rules are DRYRUN_AUDIT_LOG_ONLY';
    case 'BREAKGLASS':
      return `ALLOWED (breakglass: "${d.verdict.justification}"): the policy alone would have ${d.verdict.wouldHaveBeen === 'DENIED' ? 'denied' : 'allowed'} it`;
    case 'DENIED':
      return 'DENIED: the policy does not allow this deployment';
  }
}

function renderImage(i: ImageDecision): string[] {
  const name = i.normalized !== undefined && i.normalized !== i.image ? `${i.image} (${i.normalized})` : i.image;
  switch (i.verdict) {
    case 'ALLOWED':
      switch (i.reason) {
        case 'SYSTEM_POLICY':
          return [`  allowed  ${name}: system image pattern ${i.pattern}`];
        case 'EXEMPT_PATTERN':
          return [`  allowed  ${name}: exempt by pattern ${i.pattern}`];
        case 'ALWAYS_ALLOW':
          return [`  allowed  ${name}: ${ruleText(i.rule)} is ALWAYS_ALLOW`];
        case 'ATTESTED':
          return [`  allowed  ${name}: attested (${ruleText(i.rule)})`, ...i.attestors.flatMap(renderAttestor)];
      }
      break;
    case 'DENIED':
      if (i.reason === 'EVALUATION_FAILED') return [`  DENIED   ${name}: EVALUATION_FAILED`, `      ${i.message}`];
      return [
        `  ${i.dryRun ? 'dry-run ' : 'DENIED  '} ${name}: ${i.reason} (${ruleText(i.rule)}, ${i.rule.enforcementMode})`,
        `      ${i.message}`,
        ...i.attestors.flatMap(renderAttestor),
      ];
  }
}

function ruleText(rule: { type: string; key?: string }): string {
  return rule.key === undefined ? `${rule.type} rule` : `${rule.type} rule ${rule.key}`;
}

function renderAttestor(a: AttestorResult): string[] {
  const head = a.satisfied
    ? `      attestor ${a.attestor}: satisfied by ${a.verifiedBy.occurrence || '(unnamed occurrence)'} (key ${a.verifiedBy.keyId})`
    : `      attestor ${a.attestor}: NOT satisfied (${a.reason})`;
  const attempts = a.attestations.map((t) =>
    t.result === 'VERIFIED'
      ? `        - ${t.occurrence || '(unnamed)'}: verified with key ${t.keyId}`
      : `        - ${t.occurrence || '(unnamed)'}: ${t.code}: ${t.message}`,
  );
  return [head, ...attempts];
}
