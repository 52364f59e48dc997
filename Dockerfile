# syntax=docker/dockerfile:1
# mnemo memory server. Build: docker build -t mnemo:0.1.0 .
# Runs as uid 10001 with a read-only root filesystem; /tmp must be writable (an emptyDir in k8s).

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/mnemo \
    && /opt/mnemo/bin/pip install --no-cache-dir . \
    && /opt/mnemo/bin/python -m compileall -q /opt/mnemo/lib

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 10001 mnemo \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp mnemo
COPY --from=build /opt/mnemo /opt/mnemo
ENV PATH=/opt/mnemo/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    MNEMO_HOST=0.0.0.0 \
    MNEMO_PORT=8283 \
    MNEMO_DATA_DIR=/data \
    MNEMO_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8283
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8283/v1/health/', timeout=2)"]
ENTRYPOINT ["mnemo"]
CMD ["serve"]
