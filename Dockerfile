# churn-monitor as a container: `docker build -t churn-monitor .`, then
# `docker run churn-monitor run --config /etc/churn-monitor/config.yaml`.
# deploy/docker-compose.yml builds it and wires it to Kafka and Prometheus.
# The engine's hot path is compiled with mypyc (setup.py), which needs a C
# compiler: build the wheel in the full image, run it in the slim one.
FROM python:3.11 AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY monitor ./monitor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/churn-monitor

# The package alone first, so edits to rules/ reuse the installed layer.
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

# Bundled rules; mount another folder over it to change them without a rebuild.
COPY rules /etc/churn-monitor/rules

RUN useradd --system --uid 10001 --no-create-home churn \
    && mkdir -p /var/lib/churn-monitor && chown churn /var/lib/churn-monitor
# Checkpoint cache (SQLite); Kafka's changelog restores it when the volume is new.
VOLUME /var/lib/churn-monitor
USER churn

# Prometheus exporter.
EXPOSE 9108

ENTRYPOINT ["churn-monitor"]
CMD ["--help"]
