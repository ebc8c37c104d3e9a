# syntax=docker/dockerfile:1
# Build: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY machines ./machines
COPY src ./src
# The service's output leaves the development tools (Graph emulator, demo,
# nats-server launcher) out: the service never imports them.
RUN npm run build && mkdir /service && cp -r dist /service/dist && rm -rf /service/dist/src/tools

# Production dependencies only, shared by the two images below.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# The Graph emulator for development (`docker compose --profile emulator`):
# `docker build --target tools .`
FROM runtime AS tools
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8090
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["emulate-graph", "--host", "0.0.0.0", "--port", "8090"]

# The service (the default target): the compiled service, as a non-root user.
FROM runtime
COPY --from=build /service/dist ./dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# V8's default young generation: a larger one (32 MB semi-spaces) gave more
# pauses of 10 ms or more and no shorter tail or faster burst
# (docs/benchmarks.md has the figures).
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["serve"]
