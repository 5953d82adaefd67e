#!/usr/bin/env bash
# Installs what the Kotlin test needs, once (idempotent): kotlinc from the npm
# package kotlin-compiler (pinned) under ~/.cache/fruits, and JNA from Debian.
# Prints the Kotlin home directory.
set -euo pipefail
VERSION=2.2.21
PREFIX="${XDG_CACHE_HOME:-$HOME/.cache}/fruits/kotlin-$VERSION"
HOME_DIR="$PREFIX/node_modules/kotlin-compiler"
if [ ! -x "$HOME_DIR/bin/kotlinc" ]; then
    npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error "kotlin-compiler@$VERSION" >&2
fi
if [ ! -f /usr/share/java/jna.jar ]; then
    source "$(dirname "$0")/../../../scripts/apt.sh"
    apt_install libjna-java >&2
fi
echo "$HOME_DIR"
