#!/usr/bin/env bash
# EMR bootstrap action (runs on every node before applications start):
# install the x86_64 Linux aggregator binary from S3 as /usr/local/bin/aggregator.
# Usage: install-aggregator.sh s3://<ops-bucket>/releases/<v>/aggregator [sha256]
set -euo pipefail
src="$1"
want="${2:-}"
tmp="$(mktemp)"
aws s3 cp --only-show-errors "$src" "$tmp"
if [ -n "$want" ]; then
    echo "$want  $tmp" | sha256sum --check --status || {
        echo "install-aggregator: sha256 mismatch for $src" >&2
        exit 1
    }
fi
sudo install -m 0755 "$tmp" /usr/local/bin/aggregator
rm -f "$tmp"
# Fails the bootstrap (and the cluster) early if the binary cannot run here,
# e.g. an aarch64 build or one needing a glibc newer than 2.34.
/usr/local/bin/aggregator --help >/dev/null
