import type { Command } from 'commander';
import { buildEvidence } from '../../core/evaluation/evidence.js';
import { compilePatterns, compilePolicy, evaluate } from '../../core/evaluation/evaluate.js';
import type { DeploymentContext, Platform } from '../../core/evaluation/request.js';
import { DEFAULT_SYSTEM_IMAGE_PATTERNS } from '../../core/evaluation/system-policy.js';
import { parseImageReference } from '../../core/image/reference.js';
import type { Decision } from '../../core/evaluation/decision.js';
import { clientSettings, createClient, TIMEOUT_OPTION } from '../client.js';
import { loadEvidenceDir } from '../evidence-dir.js';
import { CliExit, EXIT } from '../exit-codes.js';
import { readText } from '../files.js';
import { renderDecision } from '../render-decision.js';
import { outputFormat } from './policy.js';

interface EvaluateOptions {
  offline?: boolean;
  project?: string;
  url?: string;
  timeout?: string;
  tokenFile?: string;
  policy?: string;
  evidence?: string;
  systemPolicy?: string;
  cluster?: string;
  namespace?: string;
  serviceAccount?: string;
  istioIdentity?: string;
  platform: string;
  breakglass?: string;
  format: string;
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description('decide whether images may be deployed, against a server\'s live policy (--project) or offline from files (--offline); exit 0 allowed (dry run and breakglass included), 1 denied, 2 bad input, 3 no decision (server unreachable, 401, 403)')
    .argument('<images...>', 'images as the deployment names them (tag, digest or both)')
    .option('--project <id>', 'evaluate against this project\'s policy on a Tollgate server')
    .option('--url <url>', 'server URL (env TOLLGATE_URL, default http://127.0.0.1:7420)')
    .option('--token-file <file>', 'access token file (env TOLLGATE_TOKEN_FILE, default ${TOLLGATE_DATA_DIR:-./tollgate-data}/admin-token)')
    .option(...TIMEOUT_OPTION)
    .option('--offline', 'evaluate locally from files, with no server')
    .option('--policy <file>', 'policy file (YAML or JSON), with --offline')
    .option('--evidence <dir>', 'folder with attestors/*.json and occurrences/*.json, with --offline')
    .option('--system-policy <file>', 'policy file whose admissionWhitelistPatterns replace the built-in system image patterns')
    .option('--platform <platform>', 'gke or cloudrun (Cloud Run uses the default rule only)', 'gke')
    .option('--cluster <location.id>', 'cluster, for clusterAdmissionRules')
    .option('--namespace <ns>', 'Kubernetes namespace')
    .option('--service-account <ns:sa>', 'Kubernetes service account (NS:SA, or SA with --namespace)')
    .option('--istio-identity <id>', 'Istio service identity (spiffe://DOMAIN/ns/NS/sa/SA)')
    .option('--breakglass <justification>', 'break glass: allow whatever the policy says, and mark the decision')
    .option('--format <format>', 'text or json (the documented decision schema)', 'text')
    .action(async (images: string[], opts: EvaluateOptions) => {
      const format = outputFormat(opts.format);
      if (opts.offline === true && opts.project !== undefined) throw new CliExit(EXIT.USAGE, '--offline and --project do not go together');
      if (opts.offline !== true) {
        if (opts.project === undefined) throw new CliExit(EXIT.USAGE, 'give --project P to ask a server, or --offline --policy FILE --evidence DIR');
        const context = deploymentContext(opts);
        for (const image of images) {
          const r = parseImageReference(image);
          if (!r.ok) throw new CliExit(EXIT.USAGE, `invalid image ${JSON.stringify(image)}: ${r.error.message}`);
        }
        const client = createClient(clientSettings({ url: opts.url, tokenFile: opts.tokenFile, timeout: opts.timeout }));
        let decision: Decision;
        try {
          decision = await client.request<Decision>('POST', `/tollgate/v1/projects/${encodeURIComponent(opts.project)}:evaluate`, { images, context });
        } catch (e) {
          // A refused request is bad input (2); anything else is "no decision" (3), never "allowed".
          if (e instanceof CliExit && e.code !== EXIT.USAGE) throw new CliExit(/INVALID_ARGUMENT/.test(e.message) ? EXIT.USAGE : EXIT.NO_DECISION, e.message);
          throw e;
        }
        process.stdout.write(format === 'json' ? `${JSON.stringify(decision, null, 2)}\n` : renderDecision(decision));
        process.exitCode = decision.allowed ? EXIT.OK : EXIT.DENIED;
        return;
      }
      if (opts.policy === undefined) throw new CliExit(EXIT.USAGE, '--policy is required with --offline');
      const context = deploymentContext(opts);
      for (const image of images) {
        const r = parseImageReference(image);
        if (!r.ok) throw new CliExit(EXIT.USAGE, `invalid image ${JSON.stringify(image)}: ${r.error.message}`);
      }
      const policy = await readPolicyFile(opts.policy, 'policy file');
      if (!policy.ok) throw new CliExit(EXIT.USAGE, `invalid policy ${opts.policy}:\n${policy.error.map((p) => `  ${p.message}`).join('\n')}`);
      const compiled = compilePolicy(policy.value);
      if (!compiled.ok) throw new CliExit(EXIT.USAGE, compiled.error.map((p) => p.message).join('\n'));
      const system = await systemPatterns(opts.systemPolicy);
      const loaded = opts.evidence === undefined ? { attestors: [], occurrences: [], notes: [] } : await loadEvidenceDir(opts.evidence);
      for (const note of loaded.notes) process.stderr.write(`note: ${note}\n`);
      const evidence = await buildEvidence(loaded.attestors, loaded.occurrences, new Date());
      const decision = evaluate(compiled.value, system, { images, context }, evidence);
      process.stdout.write(format === 'json' ? `${JSON.stringify(decision, null, 2)}\n` : renderDecision(decision));
      process.exitCode = decision.allowed ? EXIT.OK : EXIT.DENIED;
    });
}

function deploymentContext(opts: EvaluateOptions): DeploymentContext {
  if (opts.platform !== 'gke' && opts.platform !== 'cloudrun') throw new CliExit(EXIT.USAGE, `--platform must be gke or cloudrun, not ${opts.platform}`);
  const platform: Platform = opts.platform;
  if (opts.cluster !== undefined && !/^[^.\s]+\.[^.\s]+$/.test(opts.cluster)) {
    throw new CliExit(EXIT.USAGE, `--cluster must be LOCATION.CLUSTER_ID, not ${opts.cluster}`);
  }
  if (opts.serviceAccount !== undefined && !opts.serviceAccount.includes(':') && opts.namespace === undefined) {
    throw new CliExit(EXIT.USAGE, '--service-account needs the form NS:SA, or --namespace');
  }
  if (opts.breakglass !== undefined && opts.breakglass.trim() === '') throw new CliExit(EXIT.USAGE, '--breakglass needs a justification');
  const optional = { cluster: opts.cluster, namespace: opts.namespace, serviceAccount: opts.serviceAccount, istioIdentity: opts.istioIdentity, breakglass: opts.breakglass };
  return { platform, ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)) };
}

async function systemPatterns(file: string | undefined) {
  const raw = file === undefined
    ? DEFAULT_SYSTEM_IMAGE_PATTERNS
    : await (async () => {
        const r = await readPolicyFile(file, 'system policy file');
        if (!r.ok) throw new CliExit(EXIT.USAGE, `invalid system policy ${file}:\n${r.error.map((p) => `  ${p.message}`).join('\n')}`);
        return r.value.admissionWhitelistPatterns.map((p) => p.namePattern);
      })();
  const compiled = compilePatterns(raw);
  if (!compiled.ok) throw new CliExit(EXIT.USAGE, compiled.error.map((p) => p.message).join('\n'));
  return compiled.value;
}

/**
 * Reads and parses a policy file. parse-text.js is imported here, on use, because it loads the yaml
 * library, which `tollgate serve` (the same entry point) should not load.
 */
async function readPolicyFile(file: string, what: string) {
  const text = await readText(file, what);
  const { parsePolicyText } = await import('../../core/policy/parse-text.js');
  return parsePolicyText(text);
}
