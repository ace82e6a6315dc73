# churn-monitor as a container: `docker build -t churn-monitor .`, then
# `docker run churn-monitor run --config /etc/churn-monitor/config.yaml`.
# deploy/docker-compose.yml builds it and wires it to Kafka and Prometheus.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/churn-monitor

# The package alone first, so edits to rules/ reuse the installed layer.
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install . && rm -rf build ./*.egg-info

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
