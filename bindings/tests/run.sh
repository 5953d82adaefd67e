#!/usr/bin/env bash
# The SDK's foreign-language tests: builds the library, generates the bindings and
# the fixture (prepare.sh), then runs the golden test in Kotlin (JVM + JNA) and in
# Python (pytest). scripts/test.sh calls this.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash bindings/tests/prepare.sh
bash bindings/tests/kotlin/run.sh target/sdk-tests
PYTHONPATH="$PWD/target/sdk-tests/bindings:$PWD/target/sdk-tests/lib" FRUITS_SDK_FIXTURE="$PWD/target/sdk-tests/fixture" \
    python3 -m pytest -q -p no:cacheprovider bindings/tests/python
