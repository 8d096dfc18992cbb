# One image for all five PB Journey services.
#
#   docker build -t pb-journey .
#   docker run -e SERVICE=allocation -p 8002:8002 pb-journey          # chosen by SERVICE
#   docker run pb-journey python -m uvicorn services.audit.api:create_app --factory \
#       --host 0.0.0.0 --port 8005                                      # or by the command
#   docker run pb-journey pbj --help                                    # the operations CLI
#
# Settings come from the environment with the service's prefix (ALLOCATION_DATABASE_URL,
# ALLOCATION_EVENT_LOG_URL, ...): see servicekit/settings.py and docker-compose.yml.

FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# The dependencies first, read from pyproject.toml, so a code change reuses this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (a regular, non-editable install: migrations ship as package data).
COPY contracts ./contracts
COPY rules ./rules
COPY servicekit ./servicekit
COPY services ./services
COPY whatif ./whatif
COPY pbj ./pbj
RUN pip install --no-deps . && rm -rf build


FROM python:3.11-slim

LABEL org.opencontainers.image.title="pb-journey" \
      org.opencontainers.image.description="PB Journey: assessment, allocation, planning, payments and audit services" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SERVICE=""

# A fixed numeric uid/gid so Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 pbj \
    && useradd --system --uid 10001 --gid pbj --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin pbj

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# Default council policies; production mounts the council's own over /app/policies.
COPY policies ./policies
# var/ is the data directory (the SQLite fallback and nothing else in production).
RUN mkdir -p /app/var && chown pbj:pbj /app/var

USER 10001:10001

EXPOSE 8001 8002 8003 8004 8005

# No HEALTHCHECK here: the port depends on SERVICE, and docker-compose.yml and the
# Kubernetes probes check /readyz and /healthz themselves.

# SERVICE picks the app and its default port (PORT overrides); any other command replaces it.
CMD ["sh", "-c", "case \"$SERVICE\" in assessment) p=8001;; allocation) p=8002;; planning) p=8003;; payments) p=8004;; audit) p=8005;; *) echo \"set SERVICE to one of: assessment allocation planning payments audit (got '$SERVICE')\" >&2; exit 64;; esac; exec python -m uvicorn \"services.$SERVICE.api:create_app\" --factory --host 0.0.0.0 --port \"${PORT:-$p}\" --no-access-log --timeout-graceful-shutdown 20"]
