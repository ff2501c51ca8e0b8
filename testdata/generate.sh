#!/usr/bin/env bash
# Regenerates the signature-verification fixtures under testdata/ from scratch.
#
#   bash testdata/generate.sh        (or: npm run fixtures)
#
# Needs: openssl 3, gpg 2.2+, gcloud (only the offline `container binauthz
# create-signature-payload` command is used; a throw-away CLOUDSDK_CONFIG with credentials
# disabled is created, so no account is needed and nothing is contacted), node (to write JSON).
#
# Produces (every key here is a TEST-ONLY key with no passphrase; never trust it for anything):
#   testdata/pkix/<ALGORITHM>/private.pem      key for each of the 11 Binary Authorization algorithms
#   testdata/pkix/<ALGORITHM>/public.pem       its PEM SubjectPublicKeyInfo
#   testdata/pkix/<ALGORITHM>/payload.json     gcloud create-signature-payload output (digest per algorithm)
#   testdata/pkix/<ALGORITHM>/signature.bin    openssl dgst -<hash> -sign private.pem payload.json
#                                              (RSA-PSS: salt length = digest length, as Cloud KMS does)
#   testdata/pkix/RSA_PSS_*/signature-saltmax.bin  same payload, PSS with the maximum salt length
#   testdata/pkix/other-ECDSA_P256_SHA256/{private,public}.pem   a second, unrelated P-256 key
#   testdata/pgp/signer.pub.asc, signer.fpr    RSA 3072 primary key that signs (gpg --export --armor)
#   testdata/pgp/other.pub.asc, other.fpr      an unrelated ed25519 key
#   testdata/pgp/other.sec.asc                 its armored private key block (for "private key rejected")
#   testdata/pgp/subkey-signer.pub.asc, .fpr   ed25519 certify-only primary with an ed25519 signing subkey
#   testdata/pgp/payload.json                  gcloud payload
#   testdata/pgp/payload.json.asc              gpg --armor --sign by signer (attached, compressed)
#   testdata/pgp/payload.uncompressed.asc      same, with -z 0 (literal data visible, for tampering)
#   testdata/pgp/other-signed.asc              payload.json signed by other
#   testdata/pgp/subkey-signed.asc             payload.json signed by subkey-signer (its signing subkey)
#   testdata/pgp/multi-signed.asc              payload.json with two signatures, by other and by signer
#   testdata/pgp/different-payload.json/.asc   payload for another digest, signed by signer
#   testdata/pgp/clearsigned.asc               gpg --clearsign by signer (must be refused)
#   testdata/pgp/detached.asc                  gpg --armor --detach-sign by signer (must be refused)
#   testdata/payloads/cases.json               [{url, payload}]: payload = gcloud's exact stdout (with the
#                                              trailing newline) for every URL gcloud accepted
#   testdata/payloads/rejected.json            [{url, exitStatus, stderr}] for the URLs gcloud refused
#
# Idempotent: every output directory is deleted and rebuilt on each run. Takes well under a minute
# (RSA 4096 key generation dominates).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

for tool in openssl gpg gcloud node; do
  command -v "$tool" >/dev/null || { echo "generate.sh: $tool is required" >&2; exit 1; }
done

WORK="$(mktemp -d)"
cleanup() {
  gpgconf --homedir "$WORK/gnupg" --kill all >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- gcloud, offline, in a private config dir -------------------------------------------------
export CLOUDSDK_CONFIG="$WORK/gcloud"
mkdir -p "$CLOUDSDK_CONFIG"
gcloud config set core/disable_usage_reporting true >/dev/null 2>&1
gcloud config set component_manager/disable_update_check true >/dev/null 2>&1
# create-signature-payload makes no request, but gcloud insists on some credential setup first.
gcloud config set auth/disable_credentials true >/dev/null 2>&1

payload() { # payload URL OUTFILE
  gcloud container binauthz create-signature-payload --artifact-url="$1" >"$2"
}

# A stable, per-label sha256 digest so payloads differ between fixtures.
digest_for() { printf 'tollgate-fixture:%s' "$1" | openssl dgst -sha256 -r | cut -c1-64; }

# ---- PKIX --------------------------------------------------------------------------------------
rm -rf pkix
mkdir -p pkix

gen_key() { # gen_key DIR kind(ec|rsa) param
  local dir="$1" kind="$2" param="$3"
  mkdir -p "$dir"
  if [[ "$kind" == ec ]]; then
    openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:$param" \
      -pkeyopt ec_param_enc:named_curve -out "$dir/private.pem" 2>/dev/null
  else
    openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$param" -out "$dir/private.pem" 2>/dev/null
  fi
  openssl pkey -in "$dir/private.pem" -pubout -out "$dir/public.pem"
}

# ALGORITHM kind param hash padding
PKIX_TABLE=(
  "RSA_PSS_2048_SHA256 rsa 2048 sha256 pss"
  "RSA_PSS_3072_SHA256 rsa 3072 sha256 pss"
  "RSA_PSS_4096_SHA256 rsa 4096 sha256 pss"
  "RSA_PSS_4096_SHA512 rsa 4096 sha512 pss"
  "RSA_SIGN_PKCS1_2048_SHA256 rsa 2048 sha256 pkcs1"
  "RSA_SIGN_PKCS1_3072_SHA256 rsa 3072 sha256 pkcs1"
  "RSA_SIGN_PKCS1_4096_SHA256 rsa 4096 sha256 pkcs1"
  "RSA_SIGN_PKCS1_4096_SHA512 rsa 4096 sha512 pkcs1"
  "ECDSA_P256_SHA256 ec P-256 sha256 -"
  "ECDSA_P384_SHA384 ec P-384 sha384 -"
  "ECDSA_P521_SHA512 ec P-521 sha512 -"
)

for row in "${PKIX_TABLE[@]}"; do
  read -r alg kind param hash padding <<<"$row"
  dir="pkix/$alg"
  gen_key "$dir" "$kind" "$param" &
done
gen_key "pkix/other-ECDSA_P256_SHA256" ec P-256 &
wait

for row in "${PKIX_TABLE[@]}"; do
  read -r alg kind param hash padding <<<"$row"
  dir="pkix/$alg"
  lower="$(tr 'A-Z_' 'a-z-' <<<"$alg")"
  payload "us-docker.pkg.dev/tollgate-test/fixtures/$lower@sha256:$(digest_for "$alg")" "$dir/payload.json"
  if [[ "$padding" == pss ]]; then
    openssl dgst "-$hash" -sign "$dir/private.pem" -sigopt rsa_padding_mode:pss \
      -sigopt rsa_pss_saltlen:digest -out "$dir/signature.bin" "$dir/payload.json"
    openssl dgst "-$hash" -sign "$dir/private.pem" -sigopt rsa_padding_mode:pss \
      -sigopt rsa_pss_saltlen:max -out "$dir/signature-saltmax.bin" "$dir/payload.json"
  else
    openssl dgst "-$hash" -sign "$dir/private.pem" -out "$dir/signature.bin" "$dir/payload.json"
  fi
  # Self-check with openssl before anything is checked in.
  if [[ "$padding" == pss ]]; then
    openssl dgst "-$hash" -verify "$dir/public.pem" -sigopt rsa_padding_mode:pss \
      -sigopt rsa_pss_saltlen:auto -signature "$dir/signature.bin" "$dir/payload.json" >/dev/null
  else
    openssl dgst "-$hash" -verify "$dir/public.pem" -signature "$dir/signature.bin" "$dir/payload.json" >/dev/null
  fi
done

# ---- PGP ---------------------------------------------------------------------------------------
rm -rf pgp
mkdir -p pgp
export GNUPGHOME="$WORK/gnupg"
mkdir -p "$GNUPGHOME"
chmod 700 "$GNUPGHOME"
echo "allow-loopback-pinentry" >"$GNUPGHOME/gpg-agent.conf"
GPG=(gpg --batch --quiet --no-tty --pinentry-mode loopback --passphrase '')

fpr_of() { gpg --batch --quiet --with-colons --fingerprint "$1" 2>/dev/null | awk -F: '$1 == "fpr" && !n++ { print $10 }'; }

"${GPG[@]}" --quick-gen-key 'Tollgate Test Signer <signer@tollgate.test>' rsa3072 sign never
"${GPG[@]}" --quick-gen-key 'Tollgate Other Key <other@tollgate.test>' ed25519 sign never
"${GPG[@]}" --quick-gen-key 'Tollgate Subkey Signer <subkey@tollgate.test>' ed25519 cert never
SIGNER="$(fpr_of signer@tollgate.test)"
OTHER="$(fpr_of other@tollgate.test)"
SUBKEY_SIGNER="$(fpr_of subkey@tollgate.test)"
"${GPG[@]}" --quick-add-key "$SUBKEY_SIGNER" ed25519 sign never

echo "$SIGNER" >pgp/signer.fpr
echo "$OTHER" >pgp/other.fpr
echo "$SUBKEY_SIGNER" >pgp/subkey-signer.fpr
gpg --batch --armor --export "$SIGNER" >pgp/signer.pub.asc
gpg --batch --armor --export "$OTHER" >pgp/other.pub.asc
gpg --batch --armor --export "$SUBKEY_SIGNER" >pgp/subkey-signer.pub.asc
"${GPG[@]}" --armor --export-secret-keys "$OTHER" >pgp/other.sec.asc

payload "gcr.io/tollgate-test/pgp-app@sha256:$(digest_for pgp)" pgp/payload.json
payload "gcr.io/tollgate-test/pgp-app@sha256:$(digest_for pgp-different)" pgp/different-payload.json

sign() { # sign KEY OUT ARGS... IN
  local key="$1" out="$2"
  shift 2
  "${GPG[@]}" --yes --local-user "$key" --output "$out" "$@"
}
sign "$SIGNER" pgp/payload.json.asc --armor --sign pgp/payload.json
sign "$SIGNER" pgp/payload.uncompressed.asc --armor --sign -z 0 pgp/payload.json
sign "$OTHER" pgp/other-signed.asc --armor --sign pgp/payload.json
sign "$SUBKEY_SIGNER" pgp/subkey-signed.asc --armor --sign pgp/payload.json
sign "$OTHER" pgp/multi-signed.asc --local-user "$SIGNER" --armor --sign pgp/payload.json
sign "$SIGNER" pgp/different-payload.asc --armor --sign pgp/different-payload.json
sign "$SIGNER" pgp/clearsigned.asc --clearsign pgp/payload.json
sign "$SIGNER" pgp/detached.asc --armor --detach-sign pgp/payload.json

# ---- gcloud payload cases ---------------------------------------------------------------------
rm -rf payloads
mkdir -p payloads/tmp
D1="$(digest_for case-1)"
D2="$(digest_for case-2)"
D3="$(digest_for case-3)"
UPPER="$(tr 'a-f' 'A-F' <<<"$D1")"
URLS=(
  "gcr.io/my-project/app@sha256:$D1"
  "us.gcr.io/my-project/app@sha256:$D1"
  "eu.gcr.io/my-project/team/app@sha256:$D2"
  "asia.gcr.io/my-project/app@sha256:$D3"
  "us-docker.pkg.dev/google-samples/containers/gke/hello-app@sha256:$D1"
  "europe-west1-docker.pkg.dev/p/repo/app@sha256:$D2"
  "us-central1-docker.pkg.dev/my-project/my-repo/a/b/c/d/e/image@sha256:$D3"
  "docker.io/library/nginx@sha256:$D1"
  "docker.io/someuser/some-image@sha256:$D2"
  "index.docker.io/library/busybox@sha256:$D3"
  "registry-1.docker.io/library/alpine@sha256:$D1"
  "quay.io/org/image@sha256:$D2"
  "ghcr.io/owner/repo/image@sha256:$D3"
  "registry.example.com/team/app@sha256:$D1"
  "https://gcr.io/my-project/app@sha256:$D1"
  "http://gcr.io/my-project/app@sha256:$D2"
  "https://us-docker.pkg.dev/p/r/img@sha256:$D3"
  "https://localhost:5000/team/app@sha256:$D1"
  "https://127.0.0.1:5000/team/app@sha256:$D2"
  "https://registry.example.com:5000/team/app@sha256:$D3"
  "http://localhost:5000/library/app@sha256:$D1"
  "gcr.io/my-project/app:v1.2.3@sha256:$D1"
  "gcr.io/my-project/app:latest@sha256:$D2"
  "https://gcr.io/my-project/app:v1@sha256:$D3"
  "us-docker.pkg.dev/p/r/img:1.0-rc.1@sha256:$D1"
  "gcr.io/my-project/under_score.dot-dash/app@sha256:$D2"
  "gcr.io/my-project/app__x@sha256:$D3"
  "gcr.io/p/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
  # Most of these are refused by gcloud; whatever it refuses is recorded in rejected.json:
  "localhost:5000/team/app@sha256:$D1"
  "registry.example.com:5000/team/app@sha256:$D1"
  "gcr.io/my-project/app@sha256:$UPPER"
  "gcr.io/my-project/App@sha256:$D1"
  "gcr.io/my-project/app:v1"
  "gcr.io/my-project/app@sha256:abc"
  "nginx@sha256:$D1"
  "gcr.io/p/a@sha256:$D1"
  "gcr.io/my-project/app@sha512:$D1$D1"
)
i=0
for url in "${URLS[@]}"; do
  i=$((i + 1))
  set +e
  gcloud container binauthz create-signature-payload --artifact-url="$url" \
    >"payloads/tmp/$i.out" 2>"payloads/tmp/$i.err"
  status=$?
  set -e
  printf '%s\n%s\n' "$status" "$url" >"payloads/tmp/$i.meta"
done
node - "$i" payloads/tmp payloads/cases.json payloads/rejected.json <<'EOF'
const fs = require('node:fs');
const [count, dir, casesFile, rejectedFile] = process.argv.slice(2);
const accepted = [];
const rejected = [];
for (let i = 1; i <= Number(count); i++) {
  const [status, url] = fs.readFileSync(`${dir}/${i}.meta`, 'utf8').split('\n');
  if (status === '0') {
    accepted.push({ url, payload: fs.readFileSync(`${dir}/${i}.out`, 'utf8') });
  } else {
    const stderr = fs.readFileSync(`${dir}/${i}.err`, 'utf8').trim();
    rejected.push({ url, exitStatus: Number(status), stderr });
  }
}
fs.writeFileSync(casesFile, JSON.stringify(accepted, null, 2) + '\n');
fs.writeFileSync(rejectedFile, JSON.stringify(rejected, null, 2) + '\n');
console.log(`payload cases: ${accepted.length} accepted, ${rejected.length} rejected by gcloud`);
EOF
rm -rf payloads/tmp

echo "fixtures regenerated under $HERE"
