#!/usr/bin/env bash
# One-command demo on a fresh machine: install the monitor into .venv, simulate
# customers, replay their history through the rules, and show warnings, the
# customers most at risk, churn per month and how well the rules foretold it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT=${DEMO_OUT:-demo-out}
CUSTOMERS=${DEMO_CUSTOMERS:-300}
DAYS=${DEMO_DAYS:-180}

if [[ ! -x .venv/bin/churn-monitor ]]; then
    echo "== installing the monitor into .venv"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet -e .
fi
mkdir -p "$OUT"
CM=.venv/bin/churn-monitor

echo "== simulating $CUSTOMERS customers over $DAYS days"
$CM simulate --customers "$CUSTOMERS" --days "$DAYS" --seed 7 --out "$OUT/events.jsonl"

echo "== replaying the history through rules/"
$CM replay "$OUT/events.jsonl" --warnings "$OUT/warnings.jsonl" \
    --scores "$OUT/scores.csv" --churn "$OUT/churn.csv" --rejects "$OUT/rejects.jsonl" \
    --metrics "$OUT/metrics.prom"

echo
echo "== first warnings (full lifecycle in $OUT/warnings.jsonl)"
head -n 3 "$OUT/warnings.jsonl"
echo
echo "== customers most at risk (health 100 = healthy; all in $OUT/scores.csv)"
head -n 11 "$OUT/scores.csv" | column -t -s,
echo
echo "== churn per month, all plans ($OUT/churn.csv)"
grep -E '^period|\(all\)' "$OUT/churn.csv" | column -t -s,
echo
echo "== Prometheus metrics at the end (all in $OUT/metrics.prom)"
grep -E '^churn_(customers_tracked|customers_at_risk|customers_warned|period_customers_(at_start|lost)\{period="previous")' \
    "$OUT/metrics.prom" | grep -v ' 0.0$' | head -n 20
echo
echo "== how well the rules foretold the cancellations"
$CM backtest "$OUT/events.jsonl"

if [[ "${DEMO_LIVE:-0}" == 1 ]]; then
    echo
    echo "== live: a real Kafka broker, the history produced to it, the monitor consuming"
    # Stop the broker at the end only if this demo started it.
    started_broker=0
    if ! bash deploy/kafka/broker.sh status >/dev/null 2>&1; then
        started_broker=1
    fi
    bash deploy/kafka/broker.sh start
    prefix="demo$(date +%s)"
    cat > "$OUT/live.yaml" <<YAML
kafka:
  topics: [$prefix.events]
  releases_topic: $prefix.releases
  warnings_topic: $prefix.warnings
  dead_letter_topic: $prefix.dlq
  changelog_topic: $prefix.changelog
  group_id: $prefix
store:
  path: $OUT/state.db
YAML
    $CM produce "$OUT/events.jsonl" --config "$OUT/live.yaml"
    $CM run --config "$OUT/live.yaml" &
    monitor=$!
    sleep "${DEMO_LIVE_SECONDS:-40}"
    echo "== live metrics from http://127.0.0.1:9108/metrics"
    curl -s http://127.0.0.1:9108/metrics | grep -E '^churn_(customers_at_risk|customers_tracked|events_consumed_total|consumer_lag)' | head -n 15
    kill -TERM "$monitor"
    wait "$monitor" || true
    if [[ $started_broker == 1 ]]; then
        bash deploy/kafka/broker.sh stop
    fi
fi
