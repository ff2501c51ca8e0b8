#!/usr/bin/env node
// A Tollgate `exec` runtime that hands each admitted Cloud Run-style revision to a Knative Serving
// cluster with `kubectl apply` of a Knative Service.
//
//   tollgate serve --run-runtime exec --run-runtime-exec 'node examples/runtimes/knative-kubectl.mjs'
//
// Tollgate runs this once per admitted revision with the revision as JSON on stdin
// (`"action": "deploy"`, see docs/cloud-run.md) and once per deleted service (`"action": "delete"`).
// On deploy it applies a `serving.knative.dev/v1` Service whose template names the revision and
// uses the digests Tollgate admitted (never tags), waits until it is Ready, and prints its URL as
// the last line. A non-zero exit with stderr fails the revision; `gcloud run deploy` prints it.
//
// Environment: KUBECTL (default `kubectl`; add `--context`/`--kubeconfig` through KUBECTL_ARGS),
// TOLLGATE_KNATIVE_NAMESPACE (default `default`), TOLLGATE_KNATIVE_TIMEOUT (default `300s`).
// Pair it with Tollgate's admission webhook on the cluster if other paths can deploy there too.
import { spawnSync } from 'node:child_process';

const kubectl = process.env.KUBECTL || 'kubectl';
const base = (process.env.KUBECTL_ARGS || '').split(' ').filter(Boolean);
const namespace = process.env.TOLLGATE_KNATIVE_NAMESPACE || 'default';
const timeout = process.env.TOLLGATE_KNATIVE_TIMEOUT || '300s';

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function k(args, input) {
  const r = spawnSync(kubectl, [...base, ...args], { encoding: 'utf8', input });
  if (r.error) fail(`cannot run ${kubectl}: ${r.error.message}`);
  if (r.status !== 0) fail(`kubectl ${args[0]} failed: ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout.trim();
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
// Knative names are DNS labels; Tollgate's service names already are.
const name = input.service;

if (input.action === 'delete') {
  k(['delete', 'ksvc', name, '-n', namespace, '--ignore-not-found']);
  process.exit(0);
}
if (input.action !== 'deploy') fail(`unknown action ${input.action}`);

// Keep what Knative understands; Cloud Run-only fields stay behind.
const spec = input.templateSpec;
const templateSpec = {
  ...(spec.containerConcurrency === undefined ? {} : { containerConcurrency: spec.containerConcurrency }),
  ...(spec.timeoutSeconds === undefined ? {} : { timeoutSeconds: spec.timeoutSeconds }),
  ...(spec.serviceAccountName === undefined ? {} : { serviceAccountName: spec.serviceAccountName }),
  containers: input.containers.map((c) => {
    const { image: _tag, ...rest } = c.spec;
    return {
      ...rest,
      ...(c.name ? { name: c.name } : {}),
      // The digest Tollgate admitted, so a tag moved since the decision cannot change what runs.
      image: c.imageDigest,
      ...(c.ports.length > 0 ? { ports: [{ containerPort: c.ports[0] }] } : {}),
    };
  }),
};
const manifest = {
  apiVersion: 'serving.knative.dev/v1',
  kind: 'Service',
  metadata: {
    name,
    namespace,
    labels: { 'tollgate.dev/project': input.project, 'tollgate.dev/region': input.region },
    annotations: { 'tollgate.dev/revision': input.revision, 'tollgate.dev/binary-authorization-verdict': input.verdict },
  },
  spec: {
    template: {
      metadata: { name: input.revision, annotations: { 'tollgate.dev/binary-authorization-verdict': input.verdict } },
      spec: templateSpec,
    },
  },
};
k(['apply', '-f', '-'], JSON.stringify(manifest));
k(['wait', '--for=condition=Ready', `ksvc/${name}`, '-n', namespace, `--timeout=${timeout}`]);
const url = k(['get', 'ksvc', name, '-n', namespace, '-o', 'jsonpath={.status.url}']);
if (!url) fail(`Knative Service ${namespace}/${name} is Ready but has no status.url`);
process.stdout.write(`${url}\n`);
