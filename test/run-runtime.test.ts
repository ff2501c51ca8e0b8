/**
 * Where admitted revisions run: the `exec` runtime with real scripts (one that records what it was
 * given and prints a URL, one that fails), through `tollgate serve --run-runtime exec` and the
 * real gcloud; the example scripts for `docker run` and Knative `kubectl apply`, driven with
 * stand-in docker and kubectl binaries (there is no Docker engine or cluster on these machines).
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execRuntime, RuntimeFailure, type AdmittedRevision } from '../src/server/run/index.js';
import { ROOT } from './support/fixtures.js';
import { startServer, type TestServer } from './support/server.js';

const IMAGE = 'us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706';
const CRASH = 'us-docker.pkg.dev/demo/apps/crash@sha256:4b5e57f6eb2f42b9039b3d1e13929295f231749c510cbe341cd68036d9af97e2';
const REGION = '--region=us-central1';

const work = mkdtempSync(join(tmpdir(), 'tollgate-runtime-'));

function script(name: string, body: string): string {
  const file = join(work, name);
  writeFileSync(file, `#!/bin/sh\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

function revision(extra: Partial<AdmittedRevision> = {}): AdmittedRevision {
  return {
    action: 'deploy',
    project: 'demo',
    region: 'us-central1',
    service: 'hello',
    revision: 'hello-00001-abc',
    verdict: 'ALLOWED',
    containers: [{ name: '', image: 'r.example/apps/hello:v1', imageDigest: 'r.example/apps/hello@sha256:aa', ports: [8080], spec: { image: 'r.example/apps/hello:v1', env: [{ name: 'GREETING', value: 'hi' }], args: ['--serve'] } }],
    templateSpec: { containerConcurrency: 80, timeoutSeconds: 300, nodeSelector: {} },
    labels: {},
    annotations: {},
    placeholderUrl: 'http://127.0.0.1:1/run/projects/demo/locations/us-central1/services/hello/',
    ...extra,
  };
}

describe('the exec runtime', () => {
  it('passes the revision on stdin and in the environment, and takes the last line as the URL', async () => {
    const out = join(work, 'seen.json');
    const rt = execRuntime({ command: `cat > ${out}; echo "starting $TOLLGATE_RUN_SERVICE/$TOLLGATE_RUN_REVISION"; echo "  https://hello.example.com/  "` });
    expect(await rt.deploy(revision())).toEqual({ url: 'https://hello.example.com/' });
    expect(JSON.parse(readFileSync(out, 'utf8'))).toMatchObject({ action: 'deploy', service: 'hello', containers: [{ imageDigest: 'r.example/apps/hello@sha256:aa' }] });
  });

  it('fails with stderr on a non-zero exit, and says why when the output is not a URL', async () => {
    await expect(execRuntime({ command: 'echo "image pull failed: denied" >&2; exit 3' }).deploy(revision())).rejects.toThrow(new RuntimeFailure('image pull failed: denied'));
    await expect(execRuntime({ command: 'exit 4' }).deploy(revision())).rejects.toThrow(/exit code 4/);
    await expect(execRuntime({ command: 'true' }).deploy(revision())).rejects.toThrow(/printed no URL/);
    await expect(execRuntime({ command: 'echo started' }).deploy(revision())).rejects.toThrow(/"started".*not a URL/);
    await expect(execRuntime({ command: 'echo ftp://x/' }).deploy(revision())).rejects.toThrow(/not an http/);
  });

  it('kills a command (and what it started) that runs past its deadline', async () => {
    const marker = join(work, 'late');
    const started = Date.now();
    await expect(execRuntime({ command: `sleep 5; touch ${marker}`, timeoutMs: 300 }).deploy(revision())).rejects.toThrow('The runtime command did not finish starting revision hello-00001-abc within 300 ms and was stopped.');
    expect(Date.now() - started).toBeLessThan(3000);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(marker)).toBe(false);
  });
});

describe('the exec runtime behind gcloud run deploy', () => {
  let server: TestServer;
  const calls = join(work, 'calls');

  beforeAll(async () => {
    // Records each call, prints a URL for deploys, and fails for the "crash" image.
    const cmd = script('runtime.sh', [
      'set -eu',
      `mkdir -p ${calls}`,
      'input=$(cat)',
      `n=$(ls ${calls} | wc -l)`,
      `printf '%s' "$input" > ${calls}/$(printf '%03d' "$n")-$TOLLGATE_RUN_ACTION.json`,
      '[ "$TOLLGATE_RUN_ACTION" = delete ] && exit 0',
      'case "$input" in *crash*) echo "container crashed on start: exit status 3" >&2; exit 3;; esac',
      'echo "http://runtime.example/$TOLLGATE_RUN_SERVICE/$TOLLGATE_RUN_REVISION"',
    ].join('\n'));
    server = await startServer({ args: ['--run-runtime', 'exec', '--run-runtime-exec', cmd] });
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
  });

  const recorded = () => readdirSync(calls).sort().map((f) => ({ file: f, body: JSON.parse(readFileSync(join(calls, f), 'utf8')) as Record<string, any> })); // eslint-disable-line @typescript-eslint/no-explicit-any

  it('runs the admitted revision and serves at the URL the command printed', async () => {
    const r = await server.gcloud(['run', 'deploy', 'hello', `--image=${IMAGE}`, REGION, '--platform=managed', '--port=8080', '--binary-authorization=default']);
    expect(r.code, r.stderr).toBe(0);
    const url = (await server.gcloud(['run', 'services', 'describe', 'hello', REGION, '--format=value(status.url)'])).stdout.trim();
    expect(url).toMatch(/^http:\/\/runtime\.example\/hello\/hello-00001-[a-z]{3}$/);
    const [first] = recorded();
    expect(first?.body).toMatchObject({
      action: 'deploy',
      project: 'demo',
      region: 'us-central1',
      service: 'hello',
      verdict: 'ALLOWED',
      containers: [{ image: IMAGE, imageDigest: IMAGE, ports: [8080] }],
    });
    const svc = JSON.parse((await server.gcloud(['run', 'services', 'describe', 'hello', REGION, '--format=json'])).stdout);
    expect(svc.status.conditions.some((c: { type: string }) => c.type === 'Serving')).toBe(false);
  }, 60_000);

  it("a failing command fails the revision with its stderr; the previous revision keeps serving", async () => {
    const before = JSON.parse((await server.gcloud(['run', 'services', 'describe', 'hello', REGION, '--format=json'])).stdout);
    const r = await server.gcloud(['run', 'deploy', 'hello', `--image=${CRASH}`, REGION, '--platform=managed', '--binary-authorization=default']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('container crashed on start: exit status 3');
    const svc = JSON.parse((await server.gcloud(['run', 'services', 'describe', 'hello', REGION, '--format=json'])).stdout);
    expect(svc.status.conditions.find((c: { type: string }) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'RevisionFailed' });
    expect(svc.status.latestReadyRevisionName).toBe(before.status.latestReadyRevisionName);
    expect(svc.status.latestCreatedRevisionName).not.toBe(before.status.latestCreatedRevisionName);
    expect(svc.status.url).toBe(before.status.url);
    // The failure is in the audit log as a Cloud Run system event.
    await new Promise((r) => setTimeout(r, 300)); // audit entries are group-committed within 100 ms
    const logs = JSON.parse((await server.gcloud(['logging', 'read', 'protoPayload.response.status.conditions.reason="RevisionFailed"', '--format=json'])).stdout) as unknown[];
    expect(JSON.stringify(logs)).toContain('container crashed on start');
  }, 60_000);

  it('deleting the service asks the runtime to remove it', async () => {
    const r = await server.gcloud(['run', 'services', 'delete', 'hello', REGION, '--quiet']);
    expect(r.code, r.stderr).toBe(0);
    const del = recorded().find((c) => c.file.endsWith('-delete.json'));
    expect(del?.body).toMatchObject({ action: 'delete', project: 'demo', region: 'us-central1', service: 'hello' });
    expect((del?.body['revisions'] as string[]).length).toBe(2);
  }, 60_000);
});

describe('the example scripts (with stand-in docker and kubectl)', () => {
  const log = join(work, 'tools.log');
  const fakeDocker = script('docker', [
    `printf 'docker %s\\n' "$*" >> ${log}`,
    'case "$1" in',
    '  run) echo 0123456789ab;;',
    '  ps) echo 0123456789ab; echo fedcba987654;;',
    '  inspect) case "$3" in "{{.State.Running}}") echo true;; *) if [ "$4" = fedcba987654 ]; then echo /tollgate-hello-old; else echo /tollgate-hello-hello-00001-abc; fi;; esac;;',
    '  port) echo 127.0.0.1:49153;;',
    'esac',
  ].join('\n'));
  const fakeKubectl = script('kubectl', [
    `printf 'kubectl %s\\n' "$*" >> ${log}`,
    `case "$1" in apply) cat > ${join(work, 'manifest.json')};; get) printf 'http://hello.default.example.com';; esac`,
  ].join('\n'));

  it('docker-run.mjs runs the digest, publishes the port, stops older containers and prints the URL', async () => {
    writeFileSync(log, '');
    const rt = execRuntime({ command: `node ${join(ROOT, 'examples', 'runtimes', 'docker-run.mjs')}`, env: { DOCKER: fakeDocker } });
    expect(await rt.deploy(revision())).toEqual({ url: 'http://127.0.0.1:49153/' });
    const lines = readFileSync(log, 'utf8');
    expect(lines).toContain('docker run -d --name tollgate-hello-hello-00001-abc --label tollgate.dev/service=demo/us-central1/hello --label tollgate.dev/revision=hello-00001-abc -p 127.0.0.1::8080 -e PORT=8080 -e GREETING=hi r.example/apps/hello@sha256:aa --serve');
    expect(lines).toContain('docker rm -f fedcba987654');
    expect(lines).not.toContain('docker rm -f 0123456789ab');
    writeFileSync(log, '');
    await rt.remove({ action: 'delete', project: 'demo', region: 'us-central1', service: 'hello', revisions: ['hello-00001-abc'] });
    expect(readFileSync(log, 'utf8')).toContain('docker rm -f 0123456789ab fedcba987654');
    await expect(rt.deploy(revision({ containers: [...revision().containers, ...revision().containers] }))).rejects.toThrow(/single-container revisions only/);
  });

  it('knative-kubectl.mjs applies a Knative Service on the digest, waits for Ready and prints its URL', async () => {
    writeFileSync(log, '');
    const rt = execRuntime({ command: `node ${join(ROOT, 'examples', 'runtimes', 'knative-kubectl.mjs')}`, env: { KUBECTL: fakeKubectl, TOLLGATE_KNATIVE_NAMESPACE: 'apps' } });
    expect(await rt.deploy(revision())).toEqual({ url: 'http://hello.default.example.com' });
    const manifest = JSON.parse(readFileSync(join(work, 'manifest.json'), 'utf8'));
    expect(manifest).toMatchObject({
      apiVersion: 'serving.knative.dev/v1',
      kind: 'Service',
      metadata: { name: 'hello', namespace: 'apps' },
      spec: { template: { metadata: { name: 'hello-00001-abc' }, spec: { containerConcurrency: 80, containers: [{ image: 'r.example/apps/hello@sha256:aa', ports: [{ containerPort: 8080 }], env: [{ name: 'GREETING', value: 'hi' }] }] } } },
    });
    expect(manifest.spec.template.spec.nodeSelector).toBeUndefined();
    const lines = readFileSync(log, 'utf8');
    expect(lines).toContain('kubectl wait --for=condition=Ready ksvc/hello -n apps --timeout=300s');
    await rt.remove({ action: 'delete', project: 'demo', region: 'us-central1', service: 'hello', revisions: [] });
    expect(readFileSync(log, 'utf8')).toContain('kubectl delete ksvc hello -n apps --ignore-not-found');
  });
});

describe('runtime configuration (serve flags)', () => {
  it('parses --run-runtime, --run-runtime-exec and --run-runtime-timeout, flags over environment', async () => {
    const { parseRunRuntimeConfig } = await import('../src/server/run/index.js');
    expect(parseRunRuntimeConfig({})).toEqual({ kind: 'none' });
    expect(parseRunRuntimeConfig({ runRuntimeExec: 'node x.mjs' })).toEqual({ kind: 'exec', command: 'node x.mjs' });
    expect(parseRunRuntimeConfig({}, { TOLLGATE_RUN_RUNTIME: 'exec', TOLLGATE_RUN_RUNTIME_EXEC: 'cmd', TOLLGATE_RUN_RUNTIME_TIMEOUT: '30' })).toEqual({ kind: 'exec', command: 'cmd', timeoutMs: 30_000 });
    expect(parseRunRuntimeConfig({ runRuntime: 'none' }, { TOLLGATE_RUN_RUNTIME: 'exec' })).toEqual({ kind: 'none' });
    expect(() => parseRunRuntimeConfig({ runRuntime: 'docker' })).toThrow('--run-runtime must be none or exec');
    expect(() => parseRunRuntimeConfig({ runRuntime: 'exec' })).toThrow('needs --run-runtime-exec');
    expect(() => parseRunRuntimeConfig({ runRuntime: 'none', runRuntimeExec: 'x' })).toThrow('needs --run-runtime exec');
    expect(() => parseRunRuntimeConfig({ runRuntimeExec: 'x', runRuntimeTimeout: '0' })).toThrow('--run-runtime-timeout');
  });
});
