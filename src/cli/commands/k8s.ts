/** `tollgate k8s manifests`: the YAML that installs Tollgate as a cluster's image-policy webhook. */
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { DEFAULT_DATA_DIR } from '../../server/config.js';
import { DEFAULT_IMAGE, renderManifests } from '../../server/webhook/manifests.js';
import { DEFAULT_WEBHOOK_NAMESPACE, ensureWebhookCertificates, serviceNames } from '../../server/webhook/tls.js';
import { CliExit, EXIT } from '../exit-codes.js';

interface ManifestFlags {
  project: string;
  cluster: string;
  namespace: string;
  image: string;
  dataDir?: string;
}

export function registerK8s(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes: install Tollgate as a cluster\'s admission webhook');
  k8s
    .command('manifests')
    .description('print the manifests (Namespace, certificate Secret, Deployment, Services, PodDisruptionBudget, ValidatingWebhookConfiguration) for kubectl apply')
    .requiredOption('--project <id>', 'the project whose policy the cluster enforces')
    .requiredOption('--cluster <location.id>', 'the cluster as LOCATION.CLUSTER_ID, for clusterAdmissionRules (e.g. us-central1-a.prod)')
    .option('--namespace <ns>', 'namespace Tollgate runs in (exempt from the webhook)', DEFAULT_WEBHOOK_NAMESPACE)
    .option('--image <image>', 'the Tollgate container image, built from the repository\'s Dockerfile', DEFAULT_IMAGE)
    .option('--data-dir <dir>', `data folder where the webhook certificates are generated once, in webhook/ (env TOLLGATE_DATA_DIR, default ${DEFAULT_DATA_DIR})`)
    .action(async (flags: ManifestFlags) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(flags.project)) throw new CliExit(EXIT.USAGE, `--project is not a project id: ${flags.project}`);
      if (!/^[^./\s]+\.[^/\s]+$/.test(flags.cluster)) throw new CliExit(EXIT.USAGE, `--cluster must be LOCATION.CLUSTER_ID, not ${flags.cluster}`);
      if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(flags.namespace)) throw new CliExit(EXIT.USAGE, `--namespace must be a Kubernetes namespace name (DNS label), not ${flags.namespace}`);
      if (flags.image.trim() === '' || /\s/.test(flags.image)) throw new CliExit(EXIT.USAGE, `--image is not an image reference: ${flags.image}`);
      const dataDir = resolve(flags.dataDir ?? process.env['TOLLGATE_DATA_DIR'] ?? DEFAULT_DATA_DIR);
      let certificates;
      try {
        certificates = await ensureWebhookCertificates(dataDir, serviceNames(flags.namespace));
      } catch (e) {
        throw new CliExit(EXIT.USAGE, `cannot make the webhook certificates in ${dataDir}/webhook: ${(e as Error).message}`);
      }
      process.stdout.write(renderManifests({ project: flags.project, cluster: flags.cluster, namespace: flags.namespace, image: flags.image, certificates }));
    });
  for (const c of k8s.commands) c.exitOverride();
}
