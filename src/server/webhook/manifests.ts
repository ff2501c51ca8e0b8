/**
 * The Kubernetes manifests that install Tollgate as a cluster's image-policy webhook:
 * Namespace, certificate Secret, Deployment (2 replicas), Services, PodDisruptionBudget and the
 * ValidatingWebhookConfiguration. `tollgate k8s manifests` prints them as YAML.
 *
 * The webhook fails closed (`failurePolicy: Fail`), so a cluster whose webhook is down cannot
 * create pods. kube-system and the webhook's own namespace are exempted, so the webhook can always
 * be restarted; docs/kubernetes.md says how to recover otherwise.
 */
import { yamlOnUse } from '../yaml-on-use.js';
import { admissionPath } from './handler.js';
import { EPHEMERAL_CONTAINERS_SUBRESOURCE, WORKLOAD_KINDS } from './images-of.js';
import { WEBHOOK_SERVICE, type WebhookCertificates } from './tls.js';

/** The webhook's name: kubectl prints it in denials, and it prefixes the audit annotations. */
export const WEBHOOK_NAME = 'imagepolicywebhook.image-policy.k8s.io';
/** The ValidatingWebhookConfiguration's object name (what to delete to switch enforcement off). */
export const WEBHOOK_CONFIGURATION_NAME = 'tollgate-image-policy';
export const APP_NAME = 'tollgate';
export const API_SERVICE = 'tollgate';
export const CERT_SECRET = 'tollgate-webhook-tls';
/** Created by the user: `database-url` and `master-key`. */
export const CONFIG_SECRET = 'tollgate-config';
export const API_PORT = 7420;
export const WEBHOOK_PORT = 8443;
export const TIMEOUT_SECONDS = 10;
export const DEFAULT_IMAGE = 'tollgate:0.1.0';
const CERT_DIR = '/etc/tollgate/webhook';
const DATA_DIR = '/var/lib/tollgate';

export interface ManifestOptions {
  readonly project: string;
  /** `LOCATION.CLUSTER_ID`. */
  readonly cluster: string;
  readonly namespace: string;
  readonly image: string;
  readonly certificates: WebhookCertificates;
  readonly replicas?: number;
}

type Manifest = Record<string, unknown>;

export function buildManifests(o: ManifestOptions): Manifest[] {
  const labels = { 'app.kubernetes.io/name': APP_NAME, 'app.kubernetes.io/component': 'image-policy-webhook' };
  const selector = { matchLabels: labels };
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const meta = (name: string) => ({ name, namespace: o.namespace, labels });

  const namespace: Manifest = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name: o.namespace,
      labels: { 'app.kubernetes.io/name': APP_NAME, 'pod-security.kubernetes.io/enforce': 'restricted' },
    },
  };

  const secret: Manifest = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(CERT_SECRET),
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(o.certificates.certPem), 'tls.key': b64(o.certificates.keyPem), 'ca.crt': b64(o.certificates.caPem) },
  };

  const fromConfig = (name: string, key: string) => ({ name, valueFrom: { secretKeyRef: { name: CONFIG_SECRET, key } } });
  const deployment: Manifest = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(APP_NAME),
    spec: {
      replicas: o.replicas ?? 2,
      selector,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                { weight: 100, podAffinityTerm: { labelSelector: selector, topologyKey: 'kubernetes.io/hostname' } },
              ],
            },
          },
          containers: [
            {
              name: APP_NAME,
              image: o.image,
              args: [
                'serve',
                '--listen', `0.0.0.0:${API_PORT}`,
                '--data-dir', DATA_DIR,
                '--webhook-listen', `0.0.0.0:${WEBHOOK_PORT}`,
                '--webhook-cert', `${CERT_DIR}/tls.crt`,
                '--webhook-key', `${CERT_DIR}/tls.key`,
              ],
              env: [fromConfig('TOLLGATE_DATABASE', 'database-url'), fromConfig('TOLLGATE_MASTER_KEY', 'master-key')],
              ports: [
                { name: 'api', containerPort: API_PORT, protocol: 'TCP' },
                { name: 'webhook', containerPort: WEBHOOK_PORT, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'api' }, periodSeconds: 5, failureThreshold: 2 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'webhook', scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 3 },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '256Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'webhook-tls', mountPath: CERT_DIR, readOnly: true },
                { name: 'data', mountPath: DATA_DIR },
              ],
            },
          ],
          volumes: [
            { name: 'webhook-tls', secret: { secretName: CERT_SECRET } },
            { name: 'data', emptyDir: {} },
          ],
        },
      },
    },
  };

  const webhookService: Manifest = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(WEBHOOK_SERVICE),
    spec: { selector: labels, ports: [{ name: 'https', port: 443, targetPort: 'webhook', protocol: 'TCP' }] },
  };
  const apiService: Manifest = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(API_SERVICE),
    spec: { selector: labels, ports: [{ name: 'api', port: API_PORT, targetPort: 'api', protocol: 'TCP' }] },
  };

  const pdb: Manifest = {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(APP_NAME),
    spec: { minAvailable: 1, selector },
  };

  const webhook: Manifest = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIGURATION_NAME, labels },
    webhooks: [
      {
        name: WEBHOOK_NAME,
        admissionReviewVersions: ['v1'],
        clientConfig: {
          service: { name: WEBHOOK_SERVICE, namespace: o.namespace, path: admissionPath(o.project, o.cluster), port: 443 },
          caBundle: b64(o.certificates.caPem),
        },
        rules: webhookRules(),
        failurePolicy: 'Fail',
        matchPolicy: 'Equivalent',
        sideEffects: 'None',
        timeoutSeconds: TIMEOUT_SECONDS,
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: [...new Set(['kube-system', o.namespace])] }],
        },
      },
    ],
  };

  return [namespace, secret, deployment, webhookService, apiService, pdb, webhook];
}

/** One rule per API group and version, from the same table the webhook reads pod specs with. */
export function webhookRules(): Manifest[] {
  const byGroup = new Map<string, { group: string; version: string; resources: string[] }>();
  for (const w of WORKLOAD_KINDS) {
    const key = `${w.group}/${w.version}`;
    const entry = byGroup.get(key) ?? { group: w.group, version: w.version, resources: [] };
    entry.resources.push(w.resource);
    if (w.group === '' && w.resource === 'pods') entry.resources.push(`pods/${EPHEMERAL_CONTAINERS_SUBRESOURCE}`);
    byGroup.set(key, entry);
  }
  return [...byGroup.values()].map((g) => ({
    apiGroups: [g.group],
    apiVersions: [g.version],
    operations: ['CREATE', 'UPDATE'],
    resources: g.resources,
    scope: 'Namespaced',
  }));
}

export function renderManifests(o: ManifestOptions): string {
  // The CLI (whose entry point also runs `tollgate serve`) imports this module at startup.
  const { Document } = yamlOnUse();
  const docs = buildManifests(o);
  const comments: Record<string, string> = {
    Namespace: [
      ` Tollgate: the Binary Authorization webhook for project ${o.project}, cluster ${o.cluster}.`,
      ' Made by `tollgate k8s manifests`; see docs/kubernetes.md.',
      '',
      ' Before applying, create the Secret with the server\'s configuration (the generated',
      ' manifests do not hold it): a PostgreSQL URL shared by the replicas, and the master key',
      ' (base64 of 32 random bytes) that protects keys at rest. Keep the master key safe.',
      '',
      `   kubectl create namespace ${o.namespace}`,
      `   kubectl -n ${o.namespace} create secret generic ${CONFIG_SECRET} \\`,
      "     --from-literal=database-url='postgres://USER:PASSWORD@HOST:5432/tollgate' \\",
      '     --from-literal=master-key="$(head -c 32 /dev/urandom | base64)"',
      '   kubectl apply -f tollgate.yaml',
      '',
      ' If the webhook is down and pods cannot be created anywhere, switch enforcement off with',
      `   kubectl delete validatingwebhookconfiguration ${WEBHOOK_CONFIGURATION_NAME}`,
      ` (kube-system and ${o.namespace} are exempt, so Tollgate itself can always restart).`,
    ].join('\n'),
    Secret: ` The webhook's serving certificate and its CA (generated once into DATA_DIR/webhook/;\n the ValidatingWebhookConfiguration's caBundle is ca.crt).`,
    Deployment: [
      ` ${o.replicas ?? 2} replicas sharing one PostgreSQL store. The image is built from the Dockerfile at the`,
      ' root of the Tollgate repository; push it to a registry the cluster can pull from and pass',
      ' --image. Bootstrap the database once from a workstation before applying (`tollgate serve',
      ' --database URL` with the same TOLLGATE_MASTER_KEY prints where it wrote the admin token):',
      ' replicas write their bootstrap token only into their own short-lived data folder.',
    ].join('\n'),
    PodDisruptionBudget: ' Keeps one replica up during node drains: the webhook fails closed.',
    ValidatingWebhookConfiguration: [
      ' Reviews pods (and their ephemeral containers) and every kind with a pod template.',
      ' failurePolicy Fail: when Tollgate cannot answer, nothing is deployed (fail closed).',
    ].join('\n'),
  };
  const serviceComments: Record<string, string> = {
    [WEBHOOK_SERVICE]: ` The webhook: 443 → ${WEBHOOK_PORT}, the name its certificate is issued for.`,
    [API_SERVICE]: ` The Google APIs (gcloud, attestations from CI) on ${API_PORT}.`,
  };
  return docs
    .map((m) => {
      const kind = String(m['kind']);
      const name = String((m['metadata'] as { name: string }).name);
      const comment = kind === 'Service' ? serviceComments[name] : comments[kind];
      const header = comment === undefined ? '' : `${comment.split('\n').map((l) => `#${l}`.trimEnd()).join('\n')}\n`;
      return header + new Document(m, { aliasDuplicateObjects: false }).toString({ lineWidth: 0 });
    })
    .join('---\n');
}
