#!/usr/bin/env bash
# Run a single-node Apache Kafka broker (KRaft, broker and controller in one
# JVM) on 127.0.0.1 from the jars that pom.xml names, without Docker.
#
# Usage: broker.sh install | start [--fresh] | stop | status | pid | logs
#
#   install        copy the broker jars from Maven Central into the cache
#                  (skipped when pom.xml has not changed since the last copy)
#   start          install if needed, format storage on first use, start the
#                  broker in the background and wait until it answers;
#                  returns at once when a broker already answers on the port
#   start --fresh  stop the broker of this data dir and wipe its data first
#   stop           stop gracefully, kill after KAFKA_STOP_TIMEOUT_S
#   status         exit 0 when a broker answers on 127.0.0.1:KAFKA_PORT
#   pid            print the pid of the broker this script started for the
#                  data dir; exit 1 when there is none (tests use this to
#                  know whether they may stop and start the broker)
#   logs           print the end of the broker log
#
# Environment (defaults in brackets):
#   KAFKA_PORT [9092]  KAFKA_CONTROLLER_PORT [KAFKA_PORT + 1000, so 10092]
#   KAFKA_NUM_PARTITIONS [4]
#   CHURN_CACHE_DIR [~/.cache/churn-monitor]; jars go to $CHURN_CACHE_DIR/kafka
#   KAFKA_DATA_DIR [$CHURN_CACHE_DIR/kafka/kafka-data-$KAFKA_PORT]
#   KAFKA_HEAP_OPTS [-Xms256m -Xmx512m]  KAFKA_START_TIMEOUT_S [60]
#   KAFKA_STOP_TIMEOUT_S [30]  JAVA_HOME [java on PATH]
#
# Stopping and starting again with the same port and data dir keeps topics
# and committed offsets: storage is formatted only when it is still empty.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${CHURN_CACHE_DIR:-$HOME/.cache/churn-monitor}/kafka
LIB_DIR=$CACHE_DIR/libs
PORT=${KAFKA_PORT:-9092}
if [[ ! $PORT =~ ^[0-9]+$ ]]; then
    echo "broker.sh: error: KAFKA_PORT: expected a port number, got '$PORT'" >&2
    exit 2
fi
# Not 9093, Kafka's usual controller port: Alertmanager listens there
# (deploy/observability.sh). Clients never connect to the controller.
CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1000))}
DATA_DIR=${KAFKA_DATA_DIR:-$CACHE_DIR/kafka-data-$PORT}
NUM_PARTITIONS=${KAFKA_NUM_PARTITIONS:-4}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}
START_TIMEOUT_S=${KAFKA_START_TIMEOUT_S:-60}
STOP_TIMEOUT_S=${KAFKA_STOP_TIMEOUT_S:-30}
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java

CONFIG_FILE=$DATA_DIR/server.properties
PID_FILE=$DATA_DIR/broker.pid
LOG_FILE=$DATA_DIR/broker.log
LOG_DIRS=$DATA_DIR/kraft-log

say() { echo "broker.sh: $*"; }
die() { echo "broker.sh: error: $*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found on PATH; $2"
}

# Send an ApiVersions v0 request and expect a reply with the same correlation
# id and error code 0. Kafka answers requests only once the broker has joined
# the quorum and been unfenced, so a reply means producers can connect. Plain
# bash and coreutils, so status works before any Python env exists.
answers() {
    # shellcheck disable=SC2016 # $1 is expanded by the child shell.
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        # size 21 | api_key 18 | version 0 | correlation 0x2a | client_id
        printf "\x00\x00\x00\x15\x00\x12\x00\x00\x00\x00\x00\x2a\x00\x0bchurn-probe" >&3
        reply=$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")
        [[ ${reply:8:12} == "0000002a0000" ]]
    ' probe "$PORT" 2>/dev/null
}

# The pid from the pid file, if that process is still our broker.
broker_pid() {
    [[ -f $PID_FILE ]] || return 1
    local pid
    pid=$(<"$PID_FILE")
    [[ -r /proc/$pid/cmdline ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONFIG_FILE" || return 1
    echo "$pid"
}

lib_stamp() {
    sha256sum "$HERE/pom.xml" | cut -d' ' -f1
}

cmd_install() {
    if [[ -f $LIB_DIR/.stamp && $(<"$LIB_DIR/.stamp") == "$(lib_stamp)" ]]; then
        say "jars already installed: $LIB_DIR"
        return 0
    fi
    need mvn "install Maven (apt-get install maven)"
    need "$JAVA" "install Java 17 or newer (apt-get install openjdk-17-jre-headless)"

    # Copy into a fresh folder and swap it in, so a version change leaves no
    # stale jars behind and an interrupted copy is never taken for complete.
    local staging=$LIB_DIR.partial
    rm -rf "$staging"
    mkdir -p "$CACHE_DIR"
    say "copying broker jars from Maven Central into $LIB_DIR"
    mvn -B -f "$HERE/pom.xml" dependency:copy-dependencies@kafka-libs \
        -Dkafka.lib.dir="$staging" >"$CACHE_DIR/install.log" 2>&1 || {
        tail -n 30 "$CACHE_DIR/install.log" >&2
        die "mvn failed; log: $CACHE_DIR/install.log"
    }
    lib_stamp >"$staging/.stamp"
    rm -rf "$LIB_DIR"
    mv "$staging" "$LIB_DIR"
    say "jars installed: $(find "$LIB_DIR" -name '*.jar' | wc -l) files"
}

write_config() {
    mkdir -p "$DATA_DIR"
    cat >"$CONFIG_FILE" <<EOF
# Written by deploy/kafka/broker.sh on every start; edits are overwritten.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
# Dynamic quorum of one voter, written into storage by "format --standalone".
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
log.dirs=$LOG_DIRS

num.partitions=$NUM_PARTITIONS
auto.create.topics.enable=true
# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Tests create many short-lived groups; 50 offset partitions (the default)
# slow down the first group join, 8 are plenty on one node.
offsets.topic.num.partitions=8
group.initial.rebalance.delay.ms=0

# Sized for a 2-core machine.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
EOF
}

format_storage() {
    [[ -f $LOG_DIRS/meta.properties ]] && return 0

    local cluster_id
    cluster_id=$("$JAVA" -cp "$LIB_DIR/*" kafka.tools.StorageTool random-uuid)
    say "formatting storage: cluster_id=$cluster_id dir=$LOG_DIRS"
    "$JAVA" -cp "$LIB_DIR/*" \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        kafka.tools.StorageTool format --config "$CONFIG_FILE" \
        --cluster-id "$cluster_id" --standalone >>"$LOG_FILE" 2>&1 \
        || { tail -n 20 "$LOG_FILE" >&2; die "storage format failed"; }
}

launch() {
    [[ -f $LOG_FILE ]] && mv "$LOG_FILE" "$LOG_FILE.1"
    # setsid: the broker outlives the shell (and test session) that started
    # it; 9>&- keeps the command lock out of the long-lived JVM.
    # shellcheck disable=SC2086 # HEAP_OPTS holds several JVM flags.
    setsid "$JAVA" $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
        -cp "$LIB_DIR/*" kafka.Kafka "$CONFIG_FILE" \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    echo $! >"$PID_FILE"
}

wait_until_answering() {
    local pid=$1 started=$SECONDS
    while ((SECONDS - started < START_TIMEOUT_S)); do
        if answers; then
            say "broker answering on 127.0.0.1:$PORT" \
                "(pid $pid, up after $((SECONDS - started))s)"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 60 "$LOG_FILE" >&2
            die "broker exited during startup; log: $LOG_FILE"
        fi
        sleep 0.5
    done

    tail -n 60 "$LOG_FILE" >&2
    cmd_stop >&2
    die "broker did not answer within ${START_TIMEOUT_S}s; log: $LOG_FILE"
}

cmd_start() {
    local fresh=false
    case ${1:-} in
        --fresh) fresh=true ;;
        "") ;;
        *) die "unknown option for start: $1" ;;
    esac

    if $fresh; then
        cmd_stop
        say "wiping $DATA_DIR"
        rm -rf "$DATA_DIR"
    fi
    if answers; then
        say "broker already answering on 127.0.0.1:$PORT"
        return 0
    fi

    local pid
    if pid=$(broker_pid); then
        say "broker process $pid is starting, waiting for it"
        wait_until_answering "$pid"
        return 0
    fi
    # shellcheck disable=SC2016 # $1 is expanded by the child shell.
    if timeout 1 bash -c ': >"/dev/tcp/127.0.0.1/$1"' probe "$PORT" 2>/dev/null; then
        die "port $PORT is taken by something that is not a Kafka broker"
    fi

    cmd_install
    write_config
    format_storage
    launch
    wait_until_answering "$(<"$PID_FILE")"
}

cmd_stop() {
    local pid
    if ! pid=$(broker_pid); then
        rm -f "$PID_FILE"
        say "no broker running for $DATA_DIR"
        return 0
    fi

    # SIGTERM runs Kafka's shutdown hook: a controlled shutdown that flushes
    # the logs, so the next start skips log recovery.
    say "stopping broker pid $pid"
    kill -TERM "$pid"
    local started=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS - started >= STOP_TIMEOUT_S)); then
            say "no exit after ${STOP_TIMEOUT_S}s, killing pid $pid"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    rm -f "$PID_FILE"
    say "broker stopped ($((SECONDS - started))s)"
}

cmd_status() {
    if answers; then
        say "broker answering on 127.0.0.1:$PORT"
        return 0
    fi
    say "no broker answering on 127.0.0.1:$PORT"
    return 1
}

cmd_logs() {
    [[ -f $LOG_FILE ]] || die "no log yet: $LOG_FILE"
    tail -n "${LINES:-60}" "$LOG_FILE"
}

# Two starts at once (parallel test sessions, say) would launch two JVMs on
# one data dir; commands that change anything take this lock first.
lock() {
    mkdir -p "$CACHE_DIR"
    exec 9>"$CACHE_DIR/.broker-$PORT.lock"
    flock 9
}

main() {
    local command=${1:-}
    shift || true
    case $command in
        install) lock && cmd_install ;;
        start) lock && cmd_start "$@" ;;
        stop) lock && cmd_stop ;;
        status) cmd_status ;;
        pid) broker_pid ;;
        logs) cmd_logs ;;
        *)
            echo "usage: $(basename "$0")" \
                "install | start [--fresh] | stop | status | pid | logs" >&2
            exit 2
            ;;
    esac
}

main "$@"
