#!/usr/bin/env bash
# Builds upstream KEDA's operator (cmd/operator), metrics adapter (cmd/adapter) and admission
# webhooks (cmd/webhooks) from a released module on the Go module proxy, for
# `keda-conformance run --operator upstream`.
#
#   conformance/upstream/build-keda.sh [VERSION]      # default v2.21.1
#
# Output, outside the repository (nothing fetched is ever kept in it):
#   $KEDA_CONFORMANCE_CACHE/upstream-keda-<VERSION>/      (default $HOME/.cache/keda-conformance)
#     bin/keda            the operator
#     bin/keda-adapter    the metrics adapter (external.metrics.k8s.io)
#     bin/keda-admission-webhooks   the validating webhooks (keda-admission)
#     crd/*.yaml          the CRDs of that release (config/crd/bases)
#     webhooks/validation_webhooks.yaml   its `keda-admission` ValidatingWebhookConfiguration
#     src/                a writable copy of the module, where the build ran (removed once
#                         the build has finished)
#
# Idempotent: a finished build (marked by the file `done`) is reused at once. The module's own
# go.mod (its replace and exclude directives included) decides every dependency; -mod=mod lets
# the go command fetch what go.sum pins. The build runs with GOTOOLCHAIN=auto (unless the caller
# set GOTOOLCHAIN), so a release whose go.mod asks for a newer Go than the machine has (v2.21.1
# asks for go 1.27.4) gets that toolchain from the module proxy instead of failing.
set -euo pipefail

version="${1:-${KEDA_VERSION:-v2.21.1}}"
module="github.com/kedacore/keda/v2"
cache="${KEDA_CONFORMANCE_CACHE:-$HOME/.cache/keda-conformance}"
out="$cache/upstream-keda-$version"

say() { printf '[build-keda %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

binaries=(operator:keda adapter:keda-adapter webhooks:keda-admission-webhooks)
built_all() {
    local pair
    for pair in "${binaries[@]}"; do
        [[ -x "$out/bin/${pair##*:}" ]] || return 1
    done
}
if [[ -f "$out/done" ]] && built_all; then
    say "already built: $out"
    echo "$out"
    exit 0
fi
command -v go >/dev/null || { say "the go command is not on PATH"; exit 1; }
# A release may ask for a newer Go than this machine's (v2.21.1: go >= 1.27.4); "auto" lets the
# go command fetch that toolchain from the module proxy, where "local" would refuse the module.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
say "go: $(go version)"
started=$SECONDS

say "downloading $module@$version from the module proxy"
info="$(go mod download -json "$module@$version" || true)"
src_dir="$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src_dir" || ! -f "$src_dir/go.mod" ]] || grep -q '"Error"' <<<"$info"; then
    say "go mod download named no module directory:"
    printf '%s\n' "$info" >&2
    exit 1
fi
say "module source: $src_dir"

# The module cache is read-only and -mod=mod may rewrite go.mod/go.sum: build in a copy.
mkdir -p "$out"
rm -rf "$out/src.tmp"
cp -r "$src_dir" "$out/src.tmp"
chmod -R u+w "$out/src.tmp"
rm -rf "$out/src"
mv "$out/src.tmp" "$out/src"

mkdir -p "$out/crd"
cp "$out/src/config/crd/bases/"*.yaml "$out/crd/"
say "CRDs: $(ls "$out/crd" | tr '\n' ' ')"
webhooks_file="config/webhooks/validation_webhooks.yaml"
if [[ ! -f "$out/src/$webhooks_file" ]]; then
    say "$module@$version has no $webhooks_file: the runner registers KEDA's admission webhooks from that file, so this release cannot be judged with them"
    exit 1
fi
mkdir -p "$out/webhooks"
cp "$out/src/$webhooks_file" "$out/webhooks/"

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
ldflags="-X=$module/version.Version=$version -X=$module/version.GitCommit=module-proxy"
cd "$out/src"
say "go.mod asks for: $(grep -E '^(go|toolchain) ' go.mod | tr '\n' ' ')(using $(go version | cut -d' ' -f3))"
for pair in "${binaries[@]}"; do
    cmd="${pair%%:*}"
    bin="${pair##*:}"
    say "go build ./cmd/$cmd -> bin/$bin (fetches what it needs; the first build takes long)"
    t=$SECONDS
    go build -ldflags "$ldflags" -o "$out/bin/$bin" "./cmd/$cmd"
    say "built bin/$bin in $((SECONDS - t))s"
done

printf 'version=%s\nbuilt=%s\nseconds=%s\n' "$version" "$(date -u +%FT%TZ)" "$((SECONDS - started))" >"$out/done"
# The binaries, CRDs and webhook configuration are copied out: the module copy (~100 MB, and
# KEDA's code, which is read at run time, never kept) goes.
cd "$out"
rm -rf "$out/src"
say "done in $((SECONDS - started))s: $out"
echo "$out"
