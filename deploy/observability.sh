#!/usr/bin/env bash
# Install, start and stop the Prometheus and Alertmanager that watch churn-monitor.
#
#   deploy/observability.sh install   Debian packages, only when a binary is missing;
#                                     the packaged system services are left stopped
#   deploy/observability.sh start     both as plain processes on 127.0.0.1
#   deploy/observability.sh stop      end the processes that `start` recorded
#   deploy/observability.sh status    say what runs and where
#
# Environment (defaults in brackets):
#   PROM_PORT [9090]  AM_PORT [9093]
#   CHURN_MONITOR_TARGET [127.0.0.1:9108]  the monitor's exporter, host:port
#   CHURN_CACHE_DIR [$HOME/.cache/churn-monitor]  data, logs and pid files
set -euo pipefail

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROM_PORT="${PROM_PORT:-9090}"
AM_PORT="${AM_PORT:-9093}"
CHURN_MONITOR_TARGET="${CHURN_MONITOR_TARGET:-127.0.0.1:9108}"
CACHE_DIR="${CHURN_CACHE_DIR:-$HOME/.cache/churn-monitor}"
STATE_DIR="$CACHE_DIR/observability"

PROMETHEUS_BIN=/usr/bin/prometheus
PROMTOOL_BIN=/usr/bin/promtool
ALERTMANAGER_BIN=/usr/bin/prometheus-alertmanager
AMTOOL_BIN=/usr/bin/amtool

log() { printf 'observability: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

have_binaries() {
    [[ -x $PROMETHEUS_BIN && -x $PROMTOOL_BIN && -x $ALERTMANAGER_BIN && -x $AMTOOL_BIN ]]
}

# The packages' maintainer scripts start system services on ports 9090 and 9093,
# which would collide with the plain processes that `start` runs. A policy-rc.d that
# answers 101 forbids invoke-rc.d from starting anything during the install; one
# that was already in place is left untouched.
install_packages() {
    if have_binaries; then
        log "prometheus and alertmanager already installed; nothing to do"
        return 0
    fi
    [[ $(id -u) -eq 0 ]] || die "installing packages needs root: run as root or via sudo"

    local policy=/usr/sbin/policy-rc.d placed_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        placed_policy=1
    fi

    log "installing Debian packages prometheus prometheus-alertmanager"
    local status=0
    {
        apt-get update -q &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                prometheus prometheus-alertmanager
    } || status=$?
    [[ $placed_policy -eq 1 ]] && rm -f "$policy"
    [[ $status -eq 0 ]] || die "apt-get failed with status $status"

    stop_system_services
    have_binaries || die "packages installed but a binary is missing"
    log "installed: $("$PROMETHEUS_BIN" --version 2>&1 | head -n 1)"
    log "installed: $("$ALERTMANAGER_BIN" --version 2>&1 | head -n 1)"
}

# Where an init system started the packaged services anyway, stop and disable them.
stop_system_services() {
    local unit
    for unit in prometheus prometheus-alertmanager; do
        if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
            systemctl disable --now "$unit" >/dev/null 2>&1 || true
        elif [[ -x /etc/init.d/$unit ]]; then
            "/etc/init.d/$unit" stop >/dev/null 2>&1 || true
        fi
    done
    local pid
    for pid in $(pgrep -u prometheus -x prometheus 2>/dev/null) \
        $(pgrep -u prometheus -x prometheus-alertmanager 2>/dev/null); do
        log "stopping packaged service process pid=$pid"
        kill "$pid" 2>/dev/null || true
    done
}

pid_alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# A listener already on the port would make the new process exit with a bind error
# buried in its log; say so up front instead.
require_free_port() {
    local name=$1 port=$2 variable=$3
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        die "127.0.0.1:$port is already in use; stop what listens there or set $variable for $name"
    fi
}

wait_ready() {
    local name=$1 url=$2 pidfile=$3 tries=60
    while ((tries-- > 0)); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            log "$name ready at ${url%/-/ready}"
            return 0
        fi
        pid_alive "$pidfile" || die "$name exited during startup; see ${pidfile%.pid}.log"
        sleep 0.5
    done
    die "$name not ready after 30s; see ${pidfile%.pid}.log"
}

# Prometheus reads its targets from the file, so the repo's config is copied with the
# monitor and Alertmanager addresses replaced and rule files made absolute.
render_prometheus_config() {
    local out=$STATE_DIR/prometheus.yml
    sed -e "s|127\.0\.0\.1:9108|$CHURN_MONITOR_TARGET|g" \
        -e "s|127\.0\.0\.1:9093|127.0.0.1:$AM_PORT|g" \
        -e "s|^\(  - \)rules/|\1$DEPLOY_DIR/prometheus/rules/|" \
        "$DEPLOY_DIR/prometheus/prometheus.yml" >"$out"
    "$PROMTOOL_BIN" check config --syntax-only "$out" >/dev/null ||
        die "rendered config $out does not pass promtool check config"
    printf '%s\n' "$out"
}

start_alertmanager() {
    local pidfile=$STATE_DIR/alertmanager.pid
    if pid_alive "$pidfile"; then
        log "alertmanager already running pid=$(cat "$pidfile")"
        return 0
    fi
    require_free_port alertmanager "$AM_PORT" AM_PORT
    mkdir -p "$CACHE_DIR/alertmanager"
    # An empty cluster address turns off gossip, so no port beyond AM_PORT is opened.
    nohup "$ALERTMANAGER_BIN" \
        --config.file="$DEPLOY_DIR/alertmanager/alertmanager.yml" \
        --storage.path="$CACHE_DIR/alertmanager" \
        --web.listen-address="127.0.0.1:$AM_PORT" \
        --web.external-url="http://127.0.0.1:$AM_PORT/" \
        --cluster.listen-address= \
        >"$STATE_DIR/alertmanager.log" 2>&1 &
    echo $! >"$pidfile"
    wait_ready alertmanager "http://127.0.0.1:$AM_PORT/-/ready" "$pidfile"
}

start_prometheus() {
    local pidfile=$STATE_DIR/prometheus.pid config
    if pid_alive "$pidfile"; then
        log "prometheus already running pid=$(cat "$pidfile")"
        return 0
    fi
    require_free_port prometheus "$PROM_PORT" PROM_PORT
    config=$(render_prometheus_config)
    mkdir -p "$CACHE_DIR/prometheus"
    nohup "$PROMETHEUS_BIN" \
        --config.file="$config" \
        --storage.tsdb.path="$CACHE_DIR/prometheus" \
        --web.listen-address="127.0.0.1:$PROM_PORT" \
        --web.external-url="http://127.0.0.1:$PROM_PORT/" \
        --web.enable-lifecycle \
        >"$STATE_DIR/prometheus.log" 2>&1 &
    echo $! >"$pidfile"
    wait_ready prometheus "http://127.0.0.1:$PROM_PORT/-/ready" "$pidfile"
    log "prometheus scrapes churn-monitor at $CHURN_MONITOR_TARGET"
}

start() {
    have_binaries || die "prometheus or alertmanager missing: run '$0 install' first"
    command -v curl >/dev/null || die "curl is needed to wait for readiness"
    mkdir -p "$STATE_DIR"
    start_alertmanager
    start_prometheus
}

stop_one() {
    local name=$1 pidfile=$STATE_DIR/$1.pid pid tries=40
    if ! pid_alive "$pidfile"; then
        log "$name not running"
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    kill "$pid"
    while ((tries-- > 0)) && kill -0 "$pid" 2>/dev/null; do sleep 0.25; done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name pid=$pid ignored SIGTERM for 10s; sending SIGKILL"
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    log "$name stopped pid=$pid"
}

stop() {
    stop_one prometheus
    stop_one alertmanager
}

status() {
    local name
    for name in prometheus alertmanager; do
        if pid_alive "$STATE_DIR/$name.pid"; then
            log "$name running pid=$(cat "$STATE_DIR/$name.pid")"
        else
            log "$name not running"
        fi
    done
}

case "${1:-}" in
    install) install_packages ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        printf 'usage: %s install|start|stop|status\n' "$0" >&2
        exit 2
        ;;
esac
