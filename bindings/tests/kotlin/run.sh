#!/usr/bin/env bash
# Compiles the generated Kotlin bindings and the golden test with kotlinc and runs
# them on the JVM, with JNA loading the host build of the SDK library.
# Usage: bindings/tests/kotlin/run.sh <dir made by bindings/tests/prepare.sh>
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT="$(realpath "${1:?usage: run.sh <target/sdk-tests>}")"
KOTLIN_HOME="$(bash bindings/tests/kotlin/setup.sh)"
JNA=/usr/share/java/jna.jar

"$KOTLIN_HOME/bin/kotlinc" -nowarn -cp "$JNA" -d "$OUT/kotlin-test.jar" \
    "$OUT"/bindings/org/fruits/sdk/*.kt bindings/tests/kotlin/GoldenTest.kt
java -Djna.library.path="$OUT/lib" -cp "$OUT/kotlin-test.jar:$JNA:$KOTLIN_HOME/lib/kotlin-stdlib.jar" \
    GoldenTestKt "$PWD" "$OUT/fixture"
