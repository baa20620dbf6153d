# datasaver container image: the sidecar (`datasaver daemon`, the default command) and the one-shot CLI.
#   docker build -t datasaver .
# Build stage: compile TypeScript and keep only production dependencies.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: Node, the database client tools, the servers a restore drill starts (as the image's
# non-root user, in a private dir under /tmp), datasaver, a non-root user.
FROM node:24-bookworm-slim
# pg_dump must be at least the server's major version; a recent major dumps every older server. The
# drill's throwaway server is the same major, so it restores what that pg_dump wrote.
ARG PG_MAJOR=18
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates curl gnupg tini; \
    install -d /usr/share/postgresql-common/pgdg; \
    curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc; \
    echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list; \
    apt-get update; \
    apt-get install -y --no-install-recommends postgresql-common; \
    # The server package would create a cluster of its own: drills make theirs with initdb.
    sed -ri 's/^#?\s*create_main_cluster\b.*$/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf; \
    apt-get install -y --no-install-recommends \
      "postgresql-client-${PG_MAJOR}" "postgresql-${PG_MAJOR}" mariadb-client mariadb-server \
      redis-tools redis-server sqlite3; \
    apt-get purge -y --auto-remove curl gnupg; \
    # No server runs in the image: the data directories the packages made are not used.
    rm -rf /var/lib/apt/lists/* /var/lib/mysql /var/lib/postgresql/*
# The port is published and probed from outside the container, so the image listens on every address
# (datasaver alone listens on loopback only).
ENV PATH="/usr/lib/postgresql/${PG_MAJOR}/bin:${PATH}" \
    NODE_ENV=production \
    DATASAVER_STORAGE_PATH=/backups \
    DATASAVER_METRICS_PORT=9090 \
    DATASAVER_METRICS_HOST=0.0.0.0
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
RUN chmod 0755 dist/main.js && ln -s /app/dist/main.js /usr/local/bin/datasaver \
    && install -d -o node -g node -m 0700 /backups
USER node
VOLUME ["/backups"]
EXPOSE 9090
HEALTHCHECK --interval=1m --timeout=10s --start-period=30s --retries=2 CMD ["datasaver", "health"]
ENTRYPOINT ["tini", "--", "datasaver"]
CMD ["daemon"]
