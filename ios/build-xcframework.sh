#!/usr/bin/env bash
# Builds ios/FruitsFFI.xcframework (device + simulator + macOS slices of the Rust
# static library, with the FFI header and module map) and generates the Swift
# bindings into ios/Sources/FruitsSDK/. Runs on macOS with Xcode and rustup; it
# cannot run on Linux (no Apple SDKs there).
#
#   ios/build-xcframework.sh            # mobile profile (LTO, one codegen unit)
#   PROFILE=release ios/build-xcframework.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE="${PROFILE:-mobile}"
LIB=libfruits_ffi.a
OUT=target/xcframework

# The target table: one XCFramework slice per row, the Rust targets lipo'd into it.
#   slice name                   Rust targets
SLICES=(
    "ios-arm64                   aarch64-apple-ios"
    "ios-arm64_x86_64-simulator  aarch64-apple-ios-sim x86_64-apple-ios"
    "macos-arm64_x86_64          aarch64-apple-darwin x86_64-apple-darwin"
)

[ "$(uname)" = Darwin ] || { echo "build-xcframework.sh needs macOS with Xcode" >&2; exit 1; }

rustup target add aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin
rm -rf "$OUT" ios/FruitsFFI.xcframework
mkdir -p "$OUT/headers"

# Swift bindings, header and module map, generated from the host library's metadata.
cargo build --locked -p fruits-ffi -p fruits-uniffi-bindgen
target/debug/uniffi-bindgen generate \
    --library target/debug/libfruits_ffi.dylib --language swift --out-dir "$OUT/generated"
mkdir -p ios/Sources/FruitsSDK
cp "$OUT/generated/FruitsFFI.swift" ios/Sources/FruitsSDK/
cp "$OUT/generated/fruits_ffiFFI.h" "$OUT/headers/"
cp "$OUT/generated/fruits_ffiFFI.modulemap" "$OUT/headers/module.modulemap"

xcframework_args=()
for row in "${SLICES[@]}"; do
    read -r slice targets <<<"$row"
    libs=()
    for target in $targets; do
        cargo build --locked -p fruits-ffi --lib --profile "$PROFILE" --target "$target"
        libs+=("target/$target/$PROFILE/$LIB")
    done
    mkdir -p "$OUT/$slice"
    lipo -create "${libs[@]}" -output "$OUT/$slice/$LIB"
    xcframework_args+=(-library "$OUT/$slice/$LIB" -headers "$OUT/headers")
done
xcodebuild -create-xcframework "${xcframework_args[@]}" -output ios/FruitsFFI.xcframework
echo "ios/FruitsFFI.xcframework and ios/Sources/FruitsSDK/FruitsFFI.swift are ready; run: (cd ios && swift test)"
