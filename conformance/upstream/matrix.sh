#!/usr/bin/env bash
# Judges several upstream KEDA releases with the same rules, one fresh local cluster per run,
# and prints one Markdown table: per release, how many rules passed, failed as a documented
# upstream quirk, or failed.
#
#   conformance/upstream/matrix.sh [--runs N] [--out DIR] [VERSION ...]
#
# Default versions: every release the module proxy serves that the suite targets (below).
# Each release is built first when its build is not cached (conformance/upstream/build-keda.sh,
# about 13-18 minutes cold on 2 cores). Per run, DIR (default ./keda-matrix) keeps the JUnit
# and HTML reports (`<version>-<n>.xml`, `.html`) and the console output (`.log`); the table
# goes to stdout and to DIR/matrix.md. The exit status is 1 when any run had a plain failure.
set -euo pipefail

runs=1
out=keda-matrix
versions=()
while [[ $# -gt 0 ]]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "matrix.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) versions+=("$1"); shift ;;
    esac
done
if [[ ! "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "matrix.sh: --runs must be a positive whole number, not '$runs'" >&2
    exit 2
fi
if [[ ${#versions[@]} -eq 0 ]]; then
    versions=(v2.15.1 v2.16.1 v2.20.2 v2.21.0 v2.21.1)
fi

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
say() { printf '[matrix %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

say "building the runner"
(cd "$root" && cargo build -q -p keda-conformance)
runner="$root/target/debug/keda-conformance"

table="$out/matrix.md"
{
    echo "| KEDA | run | rules | pass | quirk | fail | failed rules | time |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$table"
plain_failures=0
for version in "${versions[@]}"; do
    say "$version: build (reused when cached)"
    if ! dir="$("$here/build-keda.sh" "$version" | tail -1)"; then
        say "$version: the build failed; see the lines above"
        echo "| $version | – | – | – | – | – | build failed | – |" >>"$table"
        plain_failures=1
        continue
    fi
    for n in $(seq 1 "$runs"); do
        say "$version: run $n of $runs"
        log="$out/$version-$n.log"
        set +e
        "$runner" run --operator upstream --keda-bin-dir "$dir" \
            --junit "$out/$version-$n.xml" --html "$out/$version-$n.html" >"$log" 2>&1
        status=$?
        set -e
        summary="$(grep -E '^[0-9]+ of [0-9]+ rules passed' "$log" | tail -1 || true)"
        if [[ -z "$summary" ]]; then
            say "$version: run $n ended without a verdict (exit $status); see $log"
            echo "| $version | $n | – | – | – | – | no verdict (see $(basename "$log")) | – |" >>"$table"
            plain_failures=1
            continue
        fi
        passed="$(sed -E 's/^([0-9]+) of.*/\1/' <<<"$summary")"
        total="$(sed -E 's/^[0-9]+ of ([0-9]+) .*/\1/' <<<"$summary")"
        took="$(sed -E 's/.* in ([0-9.]+s).*/\1/' <<<"$summary")"
        quirks="$(grep -c '^QUIRK ' "$log" || true)"
        failed_ids="$(grep -E '^FAIL ' "$log" | sed -E 's/^FAIL ([A-Z0-9-]+):.*/\1/' | paste -sd, - || true)"
        failed="$(grep -c '^FAIL ' "$log" || true)"
        [[ "$failed" -gt 0 ]] && plain_failures=1
        echo "| $version | $n | $total | $passed | $quirks | $failed | ${failed_ids:-–} | $took |" >>"$table"
        say "$version: run $n: $summary"
    done
done
cat "$table"
exit "$plain_failures"
