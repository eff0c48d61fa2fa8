# kube-iam-auth container image: the TokenReview webhook (`kube-iam-auth server`) and every other
# command of the CLI. Three stages, all on the official Debian 12 (bookworm) Node.js 24 LTS image:
#
#   build    npm ci (all dependencies) + npm run build (tsc + esbuild) -> /src/dist
#   deps     npm ci --omit=dev --ignore-scripts -> /app/node_modules (production dependencies only)
#   runtime  package.json, node_modules, bin/, dist/, config/ and nothing else
#
#   docker build -t kube-iam-auth:0.1.0 .
#   docker run --rm --read-only kube-iam-auth:0.1.0 version
#   docker run --rm --read-only --network host \
#     -v "$PWD/config.yaml:/etc/kube-iam-auth/config.yaml:ro" kube-iam-auth:0.1.0
#
# Plain Dockerfile syntax: it builds with the legacy builder (DOCKER_BUILDKIT=0), BuildKit, buildah
# and podman alike. The npm ci steps need the npm registry (on a host without a bridge network:
# docker build --network host ...).
#
# The runtime runs as uid/gid 65532 and writes only to its two volumes (and nothing at all for the
# offline commands), so it works with a read-only root filesystem:
#   /var/aws-iam-authenticator              serving cert.pem/key.pem and caller-keys/ (--state-dir)
#   /etc/kubernetes/aws-iam-authenticator   the webhook kubeconfig for kube-apiserver (--generate-kubeconfig)
# npm is not used at runtime (and is removed from the runtime image).
#
# Network: the server listens on server.address, 127.0.0.1 by default (port 21362), which only its
# own network namespace reaches: run it with host networking (docker run --network host, or
# hostNetwork: true as the Helm chart does) and the node's kube-apiserver reaches it on 127.0.0.1.
# So the image EXPOSEs nothing. To publish the port instead (docker run -p 21362:21362, a pod
# network behind a Service), the config must set `server.address: 0.0.0.0` (or the container's own
# IP) and `server.hostname` to the name kube-apiserver connects to, the only name the serving
# certificate then holds; keep `callerAuth: true` when the port is reachable from elsewhere.
#
# Built and run for real by test/packaging/docker.test.ts whenever a Docker engine answers; checked
# statically by test/packaging/dockerfile.test.ts (COPY sources, stage outputs, user, entrypoint,
# syntax the legacy builder knows), which without an engine also simulates the runtime stage (a
# production-only install of exactly what it copies, running the CLI and the server).

ARG NODE_IMAGE=node:24-bookworm-slim

# ---------------------------------------------------------------------------------------------------
# build: the output is plain JavaScript, the same on every platform. (A cross-build with
# docker buildx --platform linux/arm64 runs this stage emulated: slower, same result.)
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would build before the sources are copied; the build runs below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ ./scripts/
COPY src/ ./src/
RUN npm run build

# ---------------------------------------------------------------------------------------------------
# deps: production dependencies for the target platform, from the lockfile, without running any
# package scripts (none of them has a native part).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---------------------------------------------------------------------------------------------------
# runtime
FROM ${NODE_IMAGE} AS runtime
ARG NODE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kube-iam-auth" \
      org.opencontainers.image.description="IAM-to-Kubernetes authenticator: kubectl exec credential plugin and TokenReview webhook, compatible with aws-iam-authenticator" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${NODE_IMAGE}"

# Nothing in the image uses npm, npx, corepack or yarn at runtime: removing them keeps them off the
# container's filesystem and out of what a scanner reports on. (It does not make the image smaller:
# their files stay in the base image's layers, hidden by this one.) The service user is numeric
# (65532, as in distroless "nonroot") so `runAsNonRoot` can verify it; the volume directories
# belong to it.
RUN set -eux; \
    rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
           /usr/local/bin/yarn /usr/local/bin/yarnpkg /opt/yarn-*; \
    groupadd --system --gid 65532 nonroot; \
    useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin nonroot; \
    mkdir -p /etc/kube-iam-auth /var/aws-iam-authenticator /etc/kubernetes/aws-iam-authenticator; \
    chown 65532:65532 /var/aws-iam-authenticator /etc/kubernetes/aws-iam-authenticator; \
    chmod 0700 /var/aws-iam-authenticator

# HOME is a directory that exists in every deployment (the chart mounts an emptyDir there); the
# AWS SDK looks for ~/.aws/* under it and finds nothing, which is what a server wants.
# No NODE_OPTIONS: `kube-iam-auth server` runs itself with its small-heap V8 settings and
# MALLOC_ARENA_MAX=2 (a NODE_OPTIONS semi-space size would replace its own; see the README).
ENV NODE_ENV=production \
    HOME=/tmp

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin/ ./bin/
COPY config/ ./config/
# `kube-iam-auth` on PATH (/usr/local/bin, like node itself): the ENTRYPOINT below, and what
# `kubectl exec ... -- kube-iam-auth rotate-caller-key` runs. Node resolves the symlink, so the
# script finds ../dist and ../package.json next to it.
RUN chmod 0755 /app/bin/kube-iam-auth.cjs \
 && ln -s /app/bin/kube-iam-auth.cjs /usr/local/bin/kube-iam-auth

USER 65532:65532
VOLUME ["/var/aws-iam-authenticator", "/etc/kubernetes/aws-iam-authenticator"]
# No EXPOSE: the default server.address is 127.0.0.1, which a published port cannot reach (see the
# network note at the top).
# No HEALTHCHECK: Kubernetes ignores it (the Helm chart has HTTPS probes on /healthz), and most
# uses of this image are not the server (token, verify, validate, rotate-caller-key).
ENTRYPOINT ["kube-iam-auth"]
CMD ["server", "--config", "/etc/kube-iam-auth/config.yaml"]
