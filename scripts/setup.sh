#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain; idempotent and quick when
# everything is already there.
#   - Python reference tools (ONNX Runtime, scikit-learn, Pillow, numpy, pytest)
#   - the real fruit photos from Debian's tuxpaint-stamps-default into data/
#   - Garage, the S3 server the storage tests run against (built once, cached)
#   - a Java runtime for pyspark (the Spark path's tests), when none is installed
#   - kotlinc (npm kotlin-compiler) and JNA (Debian libjna-java) for the SDK's Kotlin test
#   - the DejaVu font the report's charts are drawn with (fonts-dejavu-core), when missing
#   - nasm, which assembles libjpeg-turbo's x86 SIMD kernels, when missing
#   - Chromium and its driver, the browser the report's page is tested in, when missing
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/apt.sh

python3 -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
bash scripts/fetch-photos.sh
bash scripts/garage.sh install
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    apt_install fonts-dejavu-core
fi
# libjpeg-turbo's x86 SIMD kernels (large-photo decoding) are assembled with nasm; without it
# the build still works, with the slower plain C code.
if ! command -v nasm >/dev/null; then
    apt_install nasm
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver
fi
if ! command -v java >/dev/null; then
    apt_install openjdk-17-jre-headless
fi
bash bindings/tests/kotlin/setup.sh >/dev/null
