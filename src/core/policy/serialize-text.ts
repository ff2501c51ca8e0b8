/**
 * Writing a Policy out as a file, YAML or JSON, the way `gcloud container binauthz policy export`
 * prints it. The shape (sorted keys, defaults left out) comes from policyToWire in serialize.ts;
 * this module only adds the text formats, and with them the yaml library, which the server does
 * not need.
 */
import { stringify } from 'yaml';
import type { Policy } from './model.js';
import { policyToWire } from './serialize.js';

/**
 * The policy as a file: YAML 1.2 in block style with sequences flush under their key (as gcloud
 * prints them), or JSON indented by two spaces; both end with a newline.
 */
export function serializePolicy(policy: Policy, format: 'yaml' | 'json'): string {
  const wire = policyToWire(policy);
  if (format === 'json') return `${JSON.stringify(wire, null, 2)}\n`;
  return stringify(wire, {
    version: '1.2',
    indentSeq: false,
    lineWidth: 0,
    aliasDuplicateObjects: false,
  });
}
