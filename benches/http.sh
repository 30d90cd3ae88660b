#!/bin/bash
# BENCHMARKS.md, "Over HTTP" (issue 16): `semel serve` on loopback (durable, default
# options) loaded by `semel bench --server` from a second process, against in-process
# `semel bench` with as many submitting threads, alternating, ROUNDS times (default 3):
# counter increments from 64 connections, then retries of recorded ids (duplicates)
# from one connection. Run from the repository root after `cargo build --release -p
# semel`; prints one line per run: what tx/s p50-µs p99-µs.
set -e
S=${SEMEL:-target/release/semel}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-7470}
j() { python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["tx_per_s"]), round(r["p50_us"]), round(r["p99_us"]))'; }
serve() { # serve flags...: starts a server in a fresh data dir, sets $P and $D
  D=$(mktemp -d)
  $S --data-dir "$D/d" serve --listen 127.0.0.1:$PORT --progress-secs 0 --allow-unsigned "$@" >"$D/out" 2>"$D/err" &
  P=$!
  for _ in $(seq 100); do grep -q listening "$D/out" 2>/dev/null && break; sleep 0.1; done
}
stop() { kill -TERM "$P"; wait "$P"; rm -rf "$D"; }
date; git log --oneline -1; nproc
for round in $(seq "$ROUNDS"); do
  for mode in optimistic sequential; do
    serve --concurrency $mode
    echo "http-64 $mode $($S --json bench --server http://127.0.0.1:$PORT --threads 64 --txs 40000 2>/dev/null | j)"
    stop
    D=$(mktemp -d)
    echo "inproc-64 $mode $($S --json --data-dir "$D/d" bench --threads 64 --txs 40000 --concurrency $mode 2>/dev/null | j)"
    rm -rf "$D"
  done
  serve
  echo "http-dup-1 $($S --json bench --server http://127.0.0.1:$PORT --threads 1 --txs 10000 --duplicates 2>/dev/null | j)"
  stop
done
date
