# One image for the five Threadline services.
#   docker build --build-arg APP=gateway -t threadline-gateway .    (APP picks the default service)
#   docker run threadline node dist/apps/session-service/src/main.js (or override the command)
# docker-compose.yml builds it once and runs each service with its own command.

# ---- build: every dependency, compile apps and libs to dist/ ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.build.json tsconfig.json ./
COPY apps ./apps
COPY libs ./libs
COPY tools ./tools
RUN npm run build

# ---- production dependencies only ----
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# ---- runtime ----
FROM node:20-bookworm-slim AS runtime
ARG APP=gateway
# NODE_OPTIONS: the services' heap limit, as SERVICE_NODE_FLAGS in tools/lib.sh says why.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-old-space-size=512 \
    APP=${APP}
WORKDIR /app
COPY --chown=node:node package.json ./
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
USER node
EXPOSE 3000
# Nest's shutdown hooks handle SIGTERM (docker stop): transports, relay and pool close cleanly.
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "exec node dist/apps/${APP}/src/main.js"]
