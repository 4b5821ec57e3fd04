# One image per component, from this one file. The repository root is the context (an image
# needs uv.lock and libs/core); the build args pick the component:
#
#   docker build --build-arg COMPONENT=airline-engine --build-arg SOURCE=services/engine \
#       -t airline-engine .
#
#   COMPONENT  the workspace package and its console script (airline-producer, airline-engine,
#              airline-lake-writer, airline-etl)
#   SOURCE     its directory (services/<name> or jobs/etl)
#   BASE_IMAGE a Debian bookworm image with python3.11 and its venv module; default the official
#              python:3.11-slim-bookworm, pinned by digest (bump tag and digest together, checked
#              with `docker buildx imagetools inspect python:3.11-slim-bookworm`)
#
# Third-party packages come from PyPI, pinned and hash-checked by uv.lock. A machine without
# PyPI inside its builds (CI here) passes a wheelhouse built on the host from the same lock and
# turns the index off; nothing else changes (see airline_devstack.images):
#   --build-context wheelhouse=DIR --build-arg OFFLINE=1
ARG BASE_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# Empty unless the build overrides it with a directory of wheels (--build-context wheelhouse=DIR).
FROM scratch AS wheelhouse

# ---------------------------------------------------------------- build: a venv from the lock file
FROM ${BASE_IMAGE} AS build
ARG COMPONENT
ARG SOURCE
ARG OFFLINE=0

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_FIND_LINKS=/wheelhouse \
    UV_FIND_LINKS=/wheelhouse \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1

WORKDIR /src
# The workspace's manifests and the lock only: this layer (the third-party packages) survives
# source edits. uv reads every member's pyproject.toml to load the workspace.
COPY pyproject.toml uv.lock ./
COPY libs/core/pyproject.toml libs/core/
COPY libs/charts/pyproject.toml libs/charts/
COPY libs/testkit/pyproject.toml libs/testkit/
COPY services/producer/pyproject.toml services/producer/
COPY services/engine/pyproject.toml services/engine/
COPY services/lake-writer/pyproject.toml services/lake-writer/
COPY jobs/etl/pyproject.toml jobs/etl/
COPY tools/devstack/pyproject.toml tools/devstack/
COPY tools/evaluator/pyproject.toml tools/evaluator/
COPY tools/review/pyproject.toml tools/review/

# uv pinned to the version that writes uv.lock, in a venv of its own (not in the image's).
RUN --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    set -eu; \
    if [ "${OFFLINE}" = 1 ]; then export PIP_NO_INDEX=1 UV_OFFLINE=1 UV_NO_INDEX=1; fi; \
    : "${COMPONENT:?set --build-arg COMPONENT}" "${SOURCE:?set --build-arg SOURCE}"; \
    python3.11 -m venv /opt/uv; \
    /opt/uv/bin/pip install --quiet uv==0.13.9; \
    /opt/uv/bin/uv export --frozen --no-dev --no-emit-workspace --package "${COMPONENT}" \
        --output-file /src/requirements.txt --quiet; \
    python3.11 -m venv /app/.venv; \
    /opt/uv/bin/uv pip install --python /app/.venv/bin/python --require-hashes \
        --requirement /src/requirements.txt

# Then the shared library and the component, as wheels built from source (non-editable).
COPY libs/core/ libs/core/
COPY ${SOURCE}/ ${SOURCE}/
RUN --mount=type=bind,from=wheelhouse,target=/wheelhouse \
    set -eu; \
    if [ "${OFFLINE}" = 1 ]; then export UV_OFFLINE=1 UV_NO_INDEX=1; fi; \
    /opt/uv/bin/uv pip install --python /app/.venv/bin/python --no-deps libs/core "${SOURCE}"; \
    ln -s "${COMPONENT}" /app/.venv/bin/entrypoint

# ---------------------------------------------------------------- runtime: no compilers, no uv
FROM ${BASE_IMAGE} AS runtime
ARG COMPONENT

LABEL org.opencontainers.image.title="${COMPONENT}" \
      org.opencontainers.image.source="airline-streaming" \
      org.opencontainers.image.description="${COMPONENT} of airline-streaming"

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LOG_FORMAT=json

RUN groupadd --system --gid 10001 airline \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /nonexistent \
       --no-create-home --shell /usr/sbin/nologin airline

# Owned by root and read-only for the app user: the pod runs with a read-only root filesystem.
COPY --from=build /app/.venv /app/.venv

WORKDIR /tmp
USER 10001:10001

# No EXPOSE: the ports are the chart's (METRICS_PORT: /metrics, /healthz, /readyz); the ETL
# job has none and pushes to PUSHGATEWAY_URL when set.

# The component's console script; the chart repeats it as the container command.
ENTRYPOINT ["/app/.venv/bin/entrypoint"]
