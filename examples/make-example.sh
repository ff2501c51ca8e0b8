#!/usr/bin/env bash
# Regenerates the example in this folder: an EC P-256 signing key (openssl), an attestor that trusts
# it, a signed attestation for one image digest, and a policy that requires it. The files are
# checked in so the README's first command runs with nothing but Node.js; run this script to make
# them anew (needs openssl and a built tollgate: `npm install` first).
set -euo pipefail
cd "$(dirname "$0")"
PROJECT=demo
ATTESTOR=build-attestor
NOTE=build-note
SIGNED='us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706'
KEY_ID='//cloudkms.googleapis.com/v1/projects/demo/locations/global/keyRings/binauthz/cryptoKeys/build-signer/cryptoKeyVersions/1'

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
rm -rf evidence; mkdir -p evidence/attestors evidence/occurrences

openssl ecparam -name prime256v1 -genkey -noout -out "$work/key.pem"
openssl ec -in "$work/key.pem" -pubout -out "$work/public.pem" 2>/dev/null

node ../dist/cli/main.js create-signature-payload --artifact-url="$SIGNED" > "$work/payload.json"
openssl dgst -sha256 -sign "$work/key.pem" -out "$work/signature.bin" "$work/payload.json"

b64url() { base64 -w0 "$1" | tr '+/' '-_'; }
node -e '
const [pem, keyId, attestor, note, project] = process.argv.slice(1);
process.stdout.write(JSON.stringify({
  name: `projects/${project}/attestors/${attestor}`,
  description: "Signs images that the build pipeline produced",
  userOwnedGrafeasNote: {
    noteReference: `projects/${project}/notes/${note}`,
    publicKeys: [{ id: keyId, pkixPublicKey: { publicKeyPem: pem, signatureAlgorithm: "ECDSA_P256_SHA256" } }],
    delegationServiceAccountEmail: "service-123456789012@gcp-sa-binaryauthorization.iam.gserviceaccount.com",
  },
  updateTime: "2026-11-23T09:00:00.000000Z",
}, null, 2) + "\n");
' -- "$(cat "$work/public.pem")" "$KEY_ID" "$ATTESTOR" "$NOTE" "$PROJECT" > "evidence/attestors/$ATTESTOR.json"

# The JSON array `gcloud container binauthz attestations list --format=json` prints.
cat > evidence/occurrences/attestations.json <<JSON
[
  {
    "attestation": {
      "serializedPayload": "$(b64url "$work/payload.json")",
      "signatures": [
        {
          "publicKeyId": "$KEY_ID",
          "signature": "$(b64url "$work/signature.bin")"
        }
      ]
    },
    "createTime": "2026-11-23T09:05:00.000000Z",
    "kind": "ATTESTATION",
    "name": "projects/$PROJECT/occurrences/6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
    "noteName": "projects/$PROJECT/notes/$NOTE",
    "resourceUri": "$SIGNED",
    "updateTime": "2026-11-23T09:05:00.000000Z"
  }
]
JSON
echo "example regenerated: $SIGNED is signed by projects/$PROJECT/attestors/$ATTESTOR"
