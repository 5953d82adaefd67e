#!/usr/bin/env bash
# Validates cloud-aggregator/deploy: cfn-lint on the CloudFormation template,
# parliament on every IAM policy, then the least-privilege pytest.
# Idempotent: installs the pinned linters only when missing or at another version.
#
# Accepted parliament findings: none. Every finding, at every severity down to
# INFO, fails this script. If one must be accepted some day, add it to a
# parliament --config file here with the reason, never by lowering the severity.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT_VERSION=1.51.0    # checked with `pip index versions cfn-lint`
PARLIAMENT_VERSION=1.6.4   # checked with `pip index versions parliament`
PYTEST_VERSION=9.2.0

need() {  # need <dist> <version>: pip install dist==version unless installed
    local have
    have="$(python3 -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p' || true)"
    if [ "$have" != "$2" ]; then
        python3 -m pip install --quiet --disable-pip-version-check "$1==$2"
    fi
}
need cfn-lint "$CFN_LINT_VERSION"
need parliament "$PARLIAMENT_VERSION"
python3 -c 'import pytest' 2>/dev/null || need pytest "$PYTEST_VERSION"

DEPLOY=cloud-aggregator/deploy
status=0

echo "== cfn-lint $DEPLOY/fruits.yaml (eu-west-3, informational checks included)"
if ! cfn-lint --regions eu-west-3 --include-checks I -- "$DEPLOY/fruits.yaml"; then
    status=1
fi

for policy in "$DEPLOY"/policies/*.json; do
    echo "== parliament $policy"
    # --string, never stdin/--file: parliament misreads a non-TTY stdin.
    if ! out="$(parliament --minimum_severity INFO --string "$(cat "$policy")" </dev/null 2>&1)" \
        || [ -n "$out" ]; then
        printf '%s\n' "$out"
        status=1
    fi
done

echo "== pytest $DEPLOY/tests"
python3 -m pytest -q -p no:cacheprovider "$DEPLOY/tests" || status=1

if [ "$status" -ne 0 ]; then
    echo "check-infra: FAILED" >&2
else
    echo "check-infra: clean"
fi
exit "$status"
