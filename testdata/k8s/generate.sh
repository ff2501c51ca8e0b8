#!/usr/bin/env bash
# Regenerates the kubectl-made workload fixtures in this folder with the real kubectl
# (`kubectl create … --dry-run=client -o json` needs no cluster). The other fixtures here (Pod,
# StatefulSet, DaemonSet, ReplicaSet, ReplicationController, Knative Service, a Pod with ephemeral
# containers) are written by hand in the shape the API server sends them: uid, managedFields,
# several containers. Tests wrap each in an admission.k8s.io/v1 AdmissionReview
# (test/support/k8s.ts).
#
# Images: SIGNED carries an attestation in examples/evidence; EXEMPT matches an
# admissionWhitelistPatterns entry of examples/policy.yaml.
set -euo pipefail
cd "$(dirname "$0")"
SIGNED='us-docker.pkg.dev/demo/apps/hello@sha256:9f6b8f5a0e6d4c1e2b3a49587d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a19080706'
EXEMPT='gcr.io/google-samples/hello-app:1.0'

kubectl create deployment web --namespace shop --image="$SIGNED" --image="$EXEMPT" --replicas=2 --port=8080 \
  --dry-run=client -o json > deployment.json
kubectl create job report --namespace shop --image="$SIGNED" \
  --dry-run=client -o json -- /bin/report --once > job.json
kubectl create cronjob nightly --namespace shop --image="$SIGNED" --schedule='0 3 * * *' \
  --dry-run=client -o json -- /bin/report --nightly > cronjob.json
echo "regenerated deployment.json job.json cronjob.json with $(kubectl version --client -o json | node -p 'JSON.parse(require("fs").readFileSync(0)).clientVersion.gitVersion')"
