#!/usr/bin/env bash
# Builds what the foreign-language SDK tests run against, into target/sdk-tests/:
#   lib/        the host build of the SDK library (libfruits_ffi.so)
#   bindings/   Kotlin and Python bindings generated from it (UniFFI library mode)
#   fixture/    a `fruits emulate` run: phone-00's storage holds a signed projection
#               with a recognition head trained on the real photos, and the
#               publisher's public key
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=target/sdk-tests
BIN=${CARGO_TARGET_DIR:-target}/debug

# The very build scripts/test.sh runs before (a no-op there): same features, so no
# dependency is compiled twice. It makes the library (in deps/) and `fruits`; the
# generator's own small graph (uniffi only) is built apart.
cargo test --workspace --all-targets --locked --no-run
cargo build --locked -p fruits-uniffi-bindgen
rm -rf "$OUT"
mkdir -p "$OUT/lib"
cp "$BIN/deps/libfruits_ffi.so" "$OUT/lib/"
"$BIN/uniffi-bindgen" generate --library "$OUT/lib/libfruits_ffi.so" \
    --language kotlin --language python --out-dir "$OUT/bindings"
# The generated Python module loads the library from its own folder.
cp "$OUT/lib/libfruits_ffi.so" "$OUT/bindings/"

# Views of the real photos in the Fruits-360 layout (the dataset builder: several views
# per photo, so that the head sees each class more than once and its calibration split
# holds classes it was trained on).
"$BIN/fruits" dataset build --photos data/tuxpaint/fruit --out "$OUT/dataset" --views 8 --phone-views 0 --test-percent 0 > "$OUT/dataset.json"
# One phone takes every training view, uploads them labelled, and syncs the projection.
"$BIN/fruits" emulate --dataset "$OUT/dataset" --workdir "$OUT/fixture" --phones 1 \
    --photos-before-sync all --photos-after-sync 0 --k 32 > "$OUT/emulate.json"
