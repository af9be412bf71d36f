# Herald: one image for every role (ROLES=api, worker, or api,worker).
#
#   docker build -t herald .
#   docker run --rm -p 4000:4000 -e MONGO_URL=... -e REDIS_URL=... \
#     -e JWT_SECRET=... -e SERVICE_API_KEY=... herald

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: all dependencies, codegen + tsc into dist/ ----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# codegen reads schema/ and test/operations/*.graphql; tsc compiles src/, dev/ and test/ (the
# tests import the development stack), but only dist/src reaches the runtime image.
# The example web app, served at /app, has dependencies of its own (installed before the sources
# come, so that a change of source reuses this layer).
COPY examples/web/package.json examples/web/package-lock.json ./examples/web/
RUN npm ci --prefix examples/web --no-audit --no-fund
COPY tsconfig.json codegen.yml ./
COPY schema ./schema
COPY test ./test
COPY dev ./dev
COPY src ./src
COPY examples/web ./examples/web
RUN npm run build && npm run build --prefix examples/web

# ---- prod-deps: runtime dependencies only -----------------------------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

# ---- runtime -----------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    PORT=4000
WORKDIR /app
# Files stay owned by root: the node user can read them but not change them.
COPY package.json ./
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/examples/web/dist ./examples/web/dist
USER node
EXPOSE 4000
# Liveness only; docker-compose.yml checks readiness (/readyz) instead.
# No curl in slim images: use Node's built-in fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# Exec form: node receives SIGTERM directly and drains before exiting.
CMD ["node", "dist/src/main.js"]
