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

# The very build scripts/test.sh runs before (a no-op there): same features, so no
# dependency is compiled twice. It makes the library, the generator and `fruits`.
cargo test --workspace --all-targets --locked --no-run
rm -rf "$OUT"
mkdir -p "$OUT/lib" "$OUT/dataset/Training"
cp target/debug/libfruits_ffi.so "$OUT/lib/"
target/debug/uniffi-bindgen generate --library "$OUT/lib/libfruits_ffi.so" \
    --language kotlin --language python --out-dir "$OUT/bindings"

# The real photos in the Fruits-360 layout, one class per photo.
for photo in data/tuxpaint/fruit/*.png; do
    class="$(basename "$photo" .png)"
    mkdir -p "$OUT/dataset/Training/$class"
    cp "$photo" "$OUT/dataset/Training/$class/"
done
# One phone takes every photo twice, uploads them labelled, and syncs the projection.
photos=$(find "$OUT/dataset/Training" -name '*.png' | wc -l)
target/debug/fruits emulate --dataset "$OUT/dataset" --workdir "$OUT/fixture" --phones 1 \
    --photos-before-sync $((2 * photos)) --photos-after-sync 0 --k 16 > "$OUT/emulate.json"
