#!/usr/bin/env bash
# The README's "Your own data in five steps", command by command, with a small demo extract as
# the user's own tables, in a fresh home (tests/test_docs.py keeps the commands in step with
# the README). Needs .venv from `python3 dev.py test` or `python3 dev.py demo`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
export HOME="$work" ORDERCAST_HOME="$work/ordercast"
trap 'ordercast server stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
cd "$work"
source "$root/.venv/bin/activate"

# 1. the tables (here: three demo regions, one year)
ordercast demo-data --out my --regions 3 --years 1
# 2. forecast
ordercast forecast --orders my/orders.csv --regions my/regions.csv --weather my/weather.csv --out out
# 3. backtest
ordercast backtest --orders my/orders.csv --regions my/regions.csv --weather my/weather.csv --out bt
if grep -q "left out" bt/run.json; then  # a year of history: every candidate runs, none fails quietly
    echo "walkthrough: the backtest left a candidate out (bt/run.json, notes)" >&2; exit 1
fi
# 4. forecast again: the backtest's choice is used
ordercast forecast --orders my/orders.csv --regions my/regions.csv --weather my/weather.csv --out out
grep -q '"note": "selected by backtest' out/run.json
# 5. schedule it, and run it once now from a plain shell (Prefect's CLI finds the server by its profile)
ordercast deploy --orders my/orders.csv --regions my/regions.csv --weather my/weather.csv \
    --name my-market --cron "0 5 * * *" --timezone Europe/Berlin
prefect deployment run forecast/my-market
ordercast worker --run-once
test -s "$ORDERCAST_HOME/scheduled/my-market/forecast/forecasts.parquet"
echo "walkthrough: all five steps passed"
