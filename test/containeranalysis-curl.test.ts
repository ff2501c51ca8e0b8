/**
 * The Container Analysis calls the reference walkthroughs make with curl (there is no gcloud command
 * for notes), run as the walkthroughs write them against a real `tollgate serve`. Only three things
 * are changed: the host (`https://containeranalysis.googleapis.com` → the server), the token
 * (`$(gcloud auth print-access-token)` → `$(cat "$TOKEN_FILE")`) and `/tmp/…` → a private folder.
 * Everything else (trailing slash before `?noteId=`, snake_case fields, the single-quoted IAM
 * request, the v1beta1 occurrence DELETE) is byte for byte what users paste. In the scripts below
 * `$\{` stands for the shell's `${` (a template literal would interpolate it).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, startServer, type TestServer } from './support/server.js';

let server: TestServer;
let work: string;

beforeAll(async () => {
  server = await startServer();
  work = mkdtempSync(join(tmpdir(), 'tollgate-curl-'));
});

afterAll(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs a walkthrough snippet with bash; `-vvv` output goes to stderr, the response body to stdout. */
async function walkthrough(script: string, env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  const adapted = script
    .replaceAll('$\\{', '${')
    .replaceAll('https://containeranalysis.googleapis.com', '$CA')
    .replaceAll('$(gcloud auth print-access-token)', '$(cat "$TOKEN_FILE")')
    .replaceAll('/tmp/', '$WORK/');
  const r = await run('bash', ['-euo', 'pipefail', '-c', adapted], {
    env: { ...server.gcloudEnv, CA: server.url, TOKEN_FILE: server.adminTokenFile, WORK: work, ...env },
    cwd: work,
  });
  if (r.code !== 0) throw new Error(`walkthrough failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** The JSON documents curl printed, one per call (responses end with a newline). */
function responses(stdout: string): any[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  const out: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === '}') {
      depth--;
      if (depth === 0) out.push(JSON.parse(stdout.slice(start, i + 1)));
    }
  }
  return out as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
}

describe('walkthrough curl calls against Tollgate', () => {
  it('Cloud Run with KMS (seed 000): note with a name and human_readable_name, trailing slash; cleanup DELETE', async () => {
    const create = await walkthrough(String.raw`
PROJECT_ID=demo
    cat > /tmp/note_payload.json << EOF
    {
      "name": "projects/$PROJECT_ID/notes/secure-app-attestor-note",
      "attestation": {
        "hint": {
          "human_readable_name": "Attestor for secure Flask app"
        }
      }
    }
EOF

    curl -X POST \
        -H "Content-Type: application/json" \
        -H "Authorization: Bearer $(gcloud auth print-access-token)" \
        --data-binary @/tmp/note_payload.json \
        "https://containeranalysis.googleapis.com/v1/projects/$PROJECT_ID/notes/?noteId=secure-app-attestor-note"
`);
    const [note] = responses(create.stdout);
    expect(note).toMatchObject({ name: 'projects/demo/notes/secure-app-attestor-note', kind: 'ATTESTATION', attestation: { hint: { humanReadableName: 'Attestor for secure Flask app' } } });

    const cleanup = await walkthrough(String.raw`
PROJECT_ID=demo
    curl -X DELETE \
        -H "Authorization: Bearer $(gcloud auth print-access-token)" \
        "https://containeranalysis.googleapis.com/v1/projects/$PROJECT_ID/notes/secure-app-attestor-note"
`);
    expect(responses(cleanup.stdout)).toEqual([{}]);
    expect((await server.request('GET', '/v1/projects/demo/notes/secure-app-attestor-note')).status).toBe(404);
  });

  it('Cloud Build pipeline (seed 001): quoted heredoc, URL before the headers, project from gcloud config', async () => {
    const r = await walkthrough(String.raw`
# Create the note payload
cat > /tmp/note.json << 'EOF'
{
  "attestation": {
    "hint": {
      "human_readable_name": "Build Pipeline Attestor"
    }
  }
}
EOF

# Create the Container Analysis note
PROJECT_ID=$(gcloud config get-value project)

curl -X POST \
  "https://containeranalysis.googleapis.com/v1/projects/$\{PROJECT_ID}/notes/?noteId=build-attestor-note" \
  -H "Authorization: Bearer $(gcloud auth print-access-token)" \
  -H "Content-Type: application/json" \
  --data-binary @/tmp/note.json
`);
    expect(responses(r.stdout)[0]).toMatchObject({ name: 'projects/demo/notes/build-attestor-note', attestation: { hint: { humanReadableName: 'Build Pipeline Attestor' } } });
  });

  it('GKE codelab notes (seed 003): create, verify, single-quoted IAM request to the service agent, delete', async () => {
    const r = await walkthrough(String.raw`
PROJECT_ID=demo
cat > ./create_note_request.json << EOM
{
"attestation": {
"hint": {
"human_readable_name": "This note represents an attestation authority"
}
}
}
EOM
NOTE_ID=my-attestor-note
curl -vvv -X POST \
-H "Content-Type: application/json" \
-H "Authorization: Bearer $(gcloud auth print-access-token)" \
--data-binary @./create_note_request.json \
"https://containeranalysis.googleapis.com/v1/projects/$\{PROJECT_ID}/notes/?noteId=$\{NOTE_ID}"
## Verify by:
curl -vvv \
-H "Authorization: Bearer $(gcloud auth print-access-token)" \
"https://containeranalysis.googleapis.com/v1/projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}"
PROJECT_NUMBER=$(gcloud projects describe "$\{PROJECT_ID}" --format="value(projectNumber)")
BINAUTHZ_SA_EMAIL="service-$\{PROJECT_NUMBER}@gcp-sa-binaryauthorization.iam.gserviceaccount.com"
cat > ./iam_request.json << EOM
{
'resource': 'projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}',
'policy': {
'bindings': [
{
'role': 'roles/containeranalysis.notes.occurrences.viewer',
'members': [
'serviceAccount:$\{BINAUTHZ_SA_EMAIL}'
]
}
]
}
}
EOM
## to grant the necessary IAM role
curl -X POST \
-H "Content-Type: application/json" \
-H "Authorization: Bearer $(gcloud auth print-access-token)" \
--data-binary @./iam_request.json \
"https://containeranalysis.googleapis.com/v1/projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}:setIamPolicy"
`);
    const [created, fetched, policy] = responses(r.stdout);
    expect(created).toMatchObject({ name: 'projects/demo/notes/my-attestor-note', attestation: { hint: { humanReadableName: 'This note represents an attestation authority' } } });
    expect(fetched).toEqual(created);
    expect(r.stderr).toMatch(/< HTTP\/1\.1 200/);
    expect(policy.bindings).toHaveLength(1);
    expect(policy.bindings[0].role).toBe('roles/containeranalysis.notes.occurrences.viewer');
    expect(policy.bindings[0].members[0]).toMatch(/^serviceAccount:service-\d+@gcp-sa-binaryauthorization\.iam\.gserviceaccount\.com$/);

    const del = await walkthrough(String.raw`
PROJECT_ID=demo
NOTE_ID=my-attestor-note
curl -vvv -X DELETE \
-H "Authorization: Bearer $(gcloud auth print-access-token)" \
"https://containeranalysis.googleapis.com/v1/projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}"
`);
    expect(responses(del.stdout)).toEqual([{}]);
  });

  it('GKE codelab with PGP (seed 004): v1beta1 note with attestation_authority and a name', async () => {
    const r = await walkthrough(String.raw`
PROJECT_ID=demo
NOTE_ID=codelab-note
cat > ./create_note_request.json << EOM
{
  "name": "projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}",
  "attestation_authority": {
    "hint": {
      "human_readable_name": "This note represents an attestation authority"
    }
  }
}
EOM
curl -vvv -X POST \
    -H "Content-Type: application/json"  \
    -H "Authorization: Bearer $(gcloud auth print-access-token)"  \
    --data-binary @./create_note_request.json  \
    "https://containeranalysis.googleapis.com/v1beta1/projects/$\{PROJECT_ID}/notes/?noteId=$\{NOTE_ID}"
curl -vvv  \
    -H "Authorization: Bearer $(gcloud auth print-access-token)" \
    "https://containeranalysis.googleapis.com/v1beta1/projects/$\{PROJECT_ID}/notes/$\{NOTE_ID}"
`);
    const [created, fetched] = responses(r.stdout);
    expect(created).toMatchObject({ name: 'projects/demo/notes/codelab-note', kind: 'ATTESTATION', attestationAuthority: { hint: { humanReadableName: 'This note represents an attestation authority' } } });
    expect(fetched).toEqual(created);
    // The same note through v1 is an `attestation` note.
    const v1 = await server.request('GET', '/v1/projects/demo/notes/codelab-note');
    expect(v1.body.attestation).toEqual(created.attestationAuthority);
  });

  it('console walkthrough (seed 002): find the occurrence with gcloud, delete it over v1beta1', async () => {
    const digest = `sha256:${'c0ffee'.repeat(10)}abcd`;
    const image = `us-docker.pkg.dev/demo/apps/web@${digest}`;
    const note = await server.request('POST', '/v1/projects/demo/notes?noteId=console-note', { attestation: { hint: { humanReadableName: 'console' } } });
    expect(note.status).toBe(200);
    const attestor = await server.gcloud(['container', 'binauthz', 'attestors', 'create', 'console-attestor', '--attestation-authority-note=console-note', '--attestation-authority-note-project=demo']);
    expect(attestor.code, attestor.stderr).toBe(0);
    const occ = await server.request('POST', '/v1/projects/demo/occurrences', {
      kind: 'ATTESTATION',
      noteName: 'projects/demo/notes/console-note',
      resourceUri: image,
      attestation: { serializedPayload: Buffer.from('{}').toString('base64'), signatures: [{ publicKeyId: 'urn:k', signature: 'AAAA' }] },
    });
    expect(occ.status).toBe(200);

    const listed = await walkthrough(String.raw`
ATTESTOR_PROJECT_ID=demo
ATTESTOR_NAME=console-attestor
gcloud container binauthz attestations list \
--attestor-project=$\{ATTESTOR_PROJECT_ID} \
--attestor=$\{ATTESTOR_NAME}
`);
    expect(listed.stdout).toMatch(/kind: ATTESTATION/);
    const id = /name: projects\/demo\/occurrences\/([0-9a-f-]{36})/.exec(listed.stdout)?.[1];
    expect(`projects/demo/occurrences/${id}`).toBe(occ.body.name);

    const del = await walkthrough(String.raw`
ATTESTATION_PROJECT_ID=demo
OCCURRENCE_ID="${id}"
curl -H "Authorization: Bearer $(gcloud auth print-access-token)" -X DELETE https://containeranalysis.googleapis.com/v1beta1/projects/$\{ATTESTATION_PROJECT_ID}/occurrences/$\{OCCURRENCE_ID}
`);
    expect(responses(del.stdout)).toEqual([{}]);
    expect((await server.request('GET', `/v1/${occ.body.name}`)).status).toBe(404);
    const after = await server.gcloud(['container', 'binauthz', 'attestations', 'list', '--attestor-project=demo', '--attestor=console-attestor', '--format=json']);
    expect(after.code, after.stderr).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual([]);
  });
});
