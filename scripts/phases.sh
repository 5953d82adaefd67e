# Timed phases for scripts/test.sh (sourced, not run).
#
#   phase NAME COMMAND [ARG...]   runs the command as one phase and records its seconds;
#                                 a failing phase prints its name and stops the run
#   suite_times LOG               adds one row per test binary of a `cargo test` log
#
# The table is printed when the script exits, whether it passed or failed, so that a slow
# or failing phase shows in every CI log.

PHASE_ROWS=()
# Rows a phase adds about itself (suite_times), printed under the phase's own row.
PHASE_DETAIL=()
PHASE_START=$SECONDS

phase() {
    local name=$1 start=$SECONDS status=0
    shift
    echo "== phase: $name"
    PHASE_DETAIL=()
    "$@" || status=$?
    if [ "$status" -eq 0 ]; then
        PHASE_ROWS+=("$(printf '%-44s %6d s' "$name" $((SECONDS - start)))")
    else
        PHASE_ROWS+=("$(printf '%-44s %6d s  FAILED (exit %d)' "$name" $((SECONDS - start)) "$status")")
    fi
    PHASE_ROWS+=("${PHASE_DETAIL[@]}")
    if [ "$status" -ne 0 ]; then
        echo "phase FAILED: $name (exit $status)" >&2
        return "$status"
    fi
}

# `cargo test` prints "Running <source> (<binary>)" before each test binary and
# "test result: ... finished in <seconds>s" after it: one row per binary, under the phase.
suite_times() {
    local row
    while IFS= read -r row; do PHASE_DETAIL+=("$row"); done < <(awk '
        /^ *Running / { name = ($2 == "unittests") ? $3 : $2
                        bin = $NF; sub(/\)$/, "", bin); n = split(bin, parts, "/"); bin = parts[n]; sub(/-[0-9a-f]+$/, "", bin) }
        /^ *Doc-tests / { bin = "doc-tests " $2; name = "" }
        /^test result:/ { secs = $NF; sub(/s$/, "", secs); label = (name == "") ? bin : bin " (" name ")"
                          printf "  %-42s %6.1f s\n", substr(label, 1, 42), secs }
    ' "$1")
}

print_phases() {
    local status=$?
    echo
    echo "== timing (seconds per phase; total $((SECONDS - PHASE_START)) s)"
    printf '%s\n' "${PHASE_ROWS[@]}"
    return "$status"
}
trap print_phases EXIT
