#!/usr/bin/env bash
# A real S3 server for development and tests: single-node Garage on loopback.
#
#   scripts/garage.sh install   build Garage once (pinned, S3 API + SQLite only) into ~/.cache/fruits;
#                               skipped when present
#   scripts/garage.sh start     start it with a layout, the bucket and a key; prints env lines
#   scripts/garage.sh env       print the env lines (AWS_* and FRUITS_S3_*) for a running server
#   scripts/garage.sh stop      stop it and delete its data
#
# State lives in $FRUITS_GARAGE_DIR (default target/garage). The access key is fixed
# and loopback-only: it protects nothing but this throwaway server.
set -euo pipefail
cd "$(dirname "$0")/.."

GARAGE_VERSION=2.5.0
# The tests need the S3 API on a SQLite metadata store and nothing else: no LMDB, K2V API or
# Prometheus metrics (the crate's default features). It is a loopback test server, so it is
# built at opt-level 1 without debug info: a cold build takes about 5 minutes on 2 cores where
# the default build took 18 (BENCHMARKS.md, "CI: the test command"). The features and the
# profile are part of the cache folder's name, so changing them rebuilds.
GARAGE_FEATURES=sqlite,bundled-libs
GARAGE_OPT_LEVEL=1
PREFIX="${HOME}/.cache/fruits/garage-${GARAGE_VERSION}-${GARAGE_FEATURES//,/+}-O${GARAGE_OPT_LEVEL}"
GARAGE="${PREFIX}/bin/garage"
DIR="${FRUITS_GARAGE_DIR:-$PWD/target/garage}"
S3_PORT="${FRUITS_GARAGE_S3_PORT:-3900}"
RPC_PORT="${FRUITS_GARAGE_RPC_PORT:-3901}"
ADMIN_PORT="${FRUITS_GARAGE_ADMIN_PORT:-3903}"
BUCKET="${FRUITS_S3_BUCKET:-fruits}"
KEY_ID=GK0123456789abcdef01234567
KEY_SECRET=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

install() {
    if [ -x "$GARAGE" ]; then return; fi
    echo "building garage $GARAGE_VERSION (once, cached in $PREFIX)" >&2
    CARGO_PROFILE_RELEASE_OPT_LEVEL=$GARAGE_OPT_LEVEL CARGO_PROFILE_RELEASE_DEBUG=false \
        cargo install garage --version "$GARAGE_VERSION" --locked --root "$PREFIX" \
        --no-default-features --features "$GARAGE_FEATURES" >&2
}

g() { "$GARAGE" -c "$DIR/garage.toml" "$@"; }

env_lines() {
    cat <<ENV
export AWS_ACCESS_KEY_ID=$KEY_ID
export AWS_SECRET_ACCESS_KEY=$KEY_SECRET
export AWS_REGION=garage
export FRUITS_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export FRUITS_S3_BUCKET=$BUCKET
export FRUITS_S3_PATH_STYLE=1
ENV
}

start() {
    install
    # Already running = it answers (a killed server may linger as a zombie for kill -0).
    if [ -f "$DIR/pid" ] && g status >/dev/null 2>&1; then
        env_lines
        return
    fi
    mkdir -p "$DIR/meta" "$DIR/data"
    cat >"$DIR/garage.toml" <<TOML
metadata_dir = "$DIR/meta"
data_dir = "$DIR/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(printf '%064x' 42)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$ADMIN_PORT"
TOML
    chmod 600 "$DIR/garage.toml"
    # Not through g(): $! must be the server itself, so that kill stops it.
    "$GARAGE" -c "$DIR/garage.toml" server >>"$DIR/garage.log" 2>&1 &
    echo $! >"$DIR/pid"
    for _ in $(seq 1 100); do
        g status >/dev/null 2>&1 && break
        sleep 0.1
    done
    if ! g layout show 2>/dev/null | grep -q "Current cluster layout version: [1-9]"; then
        node="$(g node id -q | cut -d@ -f1)"
        g layout assign -z dc1 -c 1G "$node" >/dev/null
        g layout apply --version 1 >/dev/null
    fi
    g bucket info "$BUCKET" >/dev/null 2>&1 || g bucket create "$BUCKET" >/dev/null
    g key info "$KEY_ID" >/dev/null 2>&1 || g key import --yes -n fruits-dev "$KEY_ID" "$KEY_SECRET" >/dev/null
    g bucket allow --read --write --owner "$BUCKET" --key "$KEY_ID" >/dev/null
    env_lines
}

stop() {
    if [ -f "$DIR/pid" ]; then
        kill "$(cat "$DIR/pid")" 2>/dev/null || true
        rm -f "$DIR/pid"
    fi
    rm -rf "$DIR"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    env) env_lines ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|env|stop" >&2; exit 2 ;;
esac
