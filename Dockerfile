# The Tollgate container image: the server (`tollgate serve`, with the admission webhook behind
# --webhook-listen) and the CLI. `tollgate k8s manifests` deploys it; see docs/kubernetes.md.
#
#   docker build -t REGISTRY/tollgate:0.1.0 . && docker push REGISTRY/tollgate:0.1.0
#
# This repository's CI has no container engine, so the image is not built or tested there.

FROM node:20-slim AS build
WORKDIR /app
# better-sqlite3 is a native module: a toolchain in case no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# `npm ci` runs the `prepare` script, which builds dist/.
RUN npm ci && npm prune --omit=dev

FROM node:20-slim
WORKDIR /app
ENV NODE_ENV=production TOLLGATE_DATA_DIR=/var/lib/tollgate
RUN mkdir -p /var/lib/tollgate && chown node:node /var/lib/tollgate
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The image's `node` user (uid 1000), as the generated Deployment's securityContext expects.
USER node
# 7420: the Google APIs; 8443: the admission webhook (HTTPS).
EXPOSE 7420 8443
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--listen", "0.0.0.0:7420"]
