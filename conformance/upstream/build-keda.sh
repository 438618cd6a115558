#!/usr/bin/env bash
# Builds upstream KEDA's operator (cmd/operator) and metrics adapter (cmd/adapter) from a
# released module on the Go module proxy, for `keda-conformance run --operator upstream`.
#
#   conformance/upstream/build-keda.sh [VERSION]      # default v2.21.0
#
# Output, outside the repository (nothing fetched is ever kept in it):
#   $KEDA_CONFORMANCE_CACHE/upstream-keda-<VERSION>/      (default $HOME/.cache/keda-conformance)
#     bin/keda            the operator
#     bin/keda-adapter    the metrics adapter (external.metrics.k8s.io)
#     crd/*.yaml          the CRDs of that release (config/crd/bases)
#     src/                a writable copy of the module, where the build ran
#
# Idempotent: a finished build (marked by the file `done`) is reused at once. The module's own
# go.mod (its replace and exclude directives included) decides every dependency; -mod=mod lets
# the go command fetch what go.sum pins. KEDA v2.21 needs Go 1.26; for a release that needs a
# newer Go than the machine has, export GOTOOLCHAIN=go1.27.3 first.
set -euo pipefail

version="${1:-${KEDA_VERSION:-v2.21.0}}"
module="github.com/kedacore/keda/v2"
cache="${KEDA_CONFORMANCE_CACHE:-$HOME/.cache/keda-conformance}"
out="$cache/upstream-keda-$version"

say() { printf '[build-keda %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -f "$out/done" && -x "$out/bin/keda" && -x "$out/bin/keda-adapter" ]]; then
    say "already built: $out"
    echo "$out"
    exit 0
fi
command -v go >/dev/null || { say "the go command is not on PATH"; exit 1; }
say "go: $(go version)"
started=$SECONDS

say "downloading $module@$version from the module proxy"
info="$(go mod download -json "$module@$version")"
src_dir="$(printf '%s\n' "$info" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [[ -z "$src_dir" || ! -f "$src_dir/go.mod" ]]; then
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

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
ldflags="-X=$module/version.Version=$version -X=$module/version.GitCommit=module-proxy"
cd "$out/src"
for pair in operator:keda adapter:keda-adapter; do
    cmd="${pair%%:*}"
    bin="${pair##*:}"
    say "go build ./cmd/$cmd -> bin/$bin (fetches what it needs; the first build takes long)"
    t=$SECONDS
    go build -ldflags "$ldflags" -o "$out/bin/$bin" "./cmd/$cmd"
    say "built bin/$bin in $((SECONDS - t))s"
done

printf 'version=%s\nbuilt=%s\nseconds=%s\n' "$version" "$(date -u +%FT%TZ)" "$((SECONDS - started))" >"$out/done"
say "done in $((SECONDS - started))s: $out"
echo "$out"
