# One image for every Python service of the lab; docker-compose.yml picks the module per service.
# Runtime dependencies only (the tools' and tests' extras stay out), run as a user without privileges.
FROM python:3.11-slim
# PIP_OPTIONS: builds without network (the compose test) install from a wheelhouse put in wheels/
ARG PIP_OPTIONS=""
WORKDIR /app
COPY pyproject.toml README.md ./
COPY lab_common lab_common
COPY facade_service facade_service
COPY logging_service logging_service
COPY messages_service messages_service
COPY config_server config_server
COPY wheels/ /tmp/wheels/
# hadolint ignore=DL3013
RUN pip install --no-cache-dir $PIP_OPTIONS . \
    && rm -rf /tmp/wheels \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin lab \
    && mkdir -p /app/var/journal && chown 10001 /app/var/journal
# numeric, so a runtime (Kubernetes' runAsNonRoot) can tell it is not root
USER 10001
ENV PYTHONUNBUFFERED=1 LAB_HOST=0.0.0.0
# /health answers 200 only when the service can do its work (its cluster, its dependencies)
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['LAB_PORT'] + '/health', timeout=2)"]
