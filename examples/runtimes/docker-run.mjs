#!/usr/bin/env node
// A Tollgate `exec` runtime that runs each admitted Cloud Run-style revision with `docker run`.
//
//   tollgate serve --run-runtime exec --run-runtime-exec 'node examples/runtimes/docker-run.mjs'
//
// Tollgate runs this once per admitted revision with the revision as JSON on stdin
// (`"action": "deploy"`, see docs/cloud-run.md) and once per deleted service (`"action": "delete"`).
// On deploy it starts the revision's container pinned to the digest Tollgate admitted (never the
// tag), waits until the container is running, stops the service's older containers, and prints
// the URL as its last line. Anything on stderr with a non-zero exit fails the revision and is shown
// to the deployer (`gcloud run deploy` prints it).
//
// Environment: DOCKER (docker binary, default `docker`), TOLLGATE_DOCKER_HOST (the address the
// published port is reachable at, default 127.0.0.1), TOLLGATE_DOCKER_NETWORK (optional
// `--network`). Only single-container revisions: sidecars need a pod, use the Knative script.
import { spawnSync } from 'node:child_process';

const docker = process.env.DOCKER || 'docker';
const publicHost = process.env.TOLLGATE_DOCKER_HOST || '127.0.0.1';

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function sh(args, { allowFailure = false } = {}) {
  const r = spawnSync(docker, args, { encoding: 'utf8' });
  if (r.error) fail(`cannot run ${docker}: ${r.error.message}`);
  if (r.status !== 0 && !allowFailure) fail(`${docker} ${args[0]} failed: ${(r.stderr || r.stdout || '').trim()}`);
  return r.stdout.trim();
}

/** Docker names: [a-zA-Z0-9][a-zA-Z0-9_.-]*. */
const safe = (s) => s.replace(/[^a-zA-Z0-9_.-]/g, '-');

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
const serviceLabel = `tollgate.dev/service=${input.project}/${input.region}/${input.service}`;

if (input.action === 'delete') {
  const ids = sh(['ps', '-aq', '--filter', `label=${serviceLabel}`]).split('\n').filter(Boolean);
  if (ids.length > 0) sh(['rm', '-f', ...ids]);
  process.exit(0);
}
if (input.action !== 'deploy') fail(`unknown action ${input.action}`);
if (input.containers.length !== 1) fail(`revision ${input.revision} has ${input.containers.length} containers; docker-run.mjs runs single-container revisions only (use knative-kubectl.mjs for sidecars)`);

const [c] = input.containers;
const port = c.ports[0] ?? 8080;
const name = safe(`tollgate-${input.service}-${input.revision}`);
const args = ['run', '-d', '--name', name, '--label', serviceLabel, '--label', `tollgate.dev/revision=${input.revision}`, '-p', `${publicHost}::${port}`, '-e', `PORT=${port}`];
if (process.env.TOLLGATE_DOCKER_NETWORK) args.push('--network', process.env.TOLLGATE_DOCKER_NETWORK);
for (const e of c.spec.env ?? []) if (typeof e.name === 'string' && typeof e.value === 'string') args.push('-e', `${e.name}=${e.value}`);
if (Array.isArray(c.spec.command) && c.spec.command.length > 0) args.push('--entrypoint', c.spec.command[0]);
// The digest Tollgate admitted, so a tag moved since the decision cannot change what runs.
args.push(c.imageDigest);
if (Array.isArray(c.spec.command)) args.push(...c.spec.command.slice(1));
if (Array.isArray(c.spec.args)) args.push(...c.spec.args);

sh(['rm', '-f', name], { allowFailure: true });
sh(args);
const running = sh(['inspect', '-f', '{{.State.Running}}', name]);
if (running !== 'true') {
  const logs = sh(['logs', '--tail', '20', name], { allowFailure: true });
  fail(`container of revision ${input.revision} is not running${logs ? `: ${logs}` : ''}`);
}
// e.g. "127.0.0.1:49153"
const published = sh(['port', name, `${port}/tcp`]).split('\n')[0];
const hostPort = published.slice(published.lastIndexOf(':') + 1);
// The new revision serves: stop the service's older containers.
for (const id of sh(['ps', '-aq', '--filter', `label=${serviceLabel}`]).split('\n').filter(Boolean)) {
  const other = sh(['inspect', '-f', '{{.Name}}', id], { allowFailure: true }).replace(/^\//, '');
  if (other !== name) sh(['rm', '-f', id], { allowFailure: true });
}
process.stdout.write(`http://${publicHost}:${hostPort}/\n`);
