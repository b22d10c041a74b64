#!/bin/sh
# A first look on built-in sample data: a fresh tree, two hosts' datasets, one merge.
# Usage: sh examples/try.sh [BINDIR]   (BINDIR holds the installed commands, e.g. .venv/bin)
set -e
BIN=${1:-.venv/bin}
ROOT=${MBGROOT:-/tmp/mbg-try}
export MBGROOT=$ROOT
rm -rf "$ROOT"
"$BIN/mbg" init
"$BIN/telephony-dataset-init" 2009-10
SAMPLES=$(dirname "$0")/samples
"$BIN/telephony-dataset-merge" "$SAMPLES/host1-2009-10-01.db" "$SAMPLES/host2-2009-10-01.db" \
    "$ROOT/dataset/telephony/2009-10-01.db"
"$BIN/telephony-dataset-merge" "$SAMPLES/host1-2009-10-01.db" "$ROOT/dataset/telephony/2009-10-01.db"
echo "days of the month, for billing-cost-daily:"
"$BIN/month" 2009-10 | head -3
echo "..."
echo "tree: $ROOT"
