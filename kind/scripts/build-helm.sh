#!/usr/bin/env bash
# Builds the Helm CLI from the Go module proxy into an output directory outside the repository,
# beside the control-plane binaries. The chart tests render charts/keda-operator with it.
#
#   build-helm.sh [OUTDIR]
#
# OUTDIR defaults to $KEDA_CONFORMANCE_CACHE/helm-$HELM_VERSION ($KEDA_CONFORMANCE_CACHE defaults
# to $HOME/.cache/keda-conformance). The build is idempotent: when OUTDIR already holds helm of
# the requested version it returns at once. Nothing the script downloads or builds belongs in git.
set -euo pipefail

HELM=${HELM_VERSION:-v3.22.0}
OUT=$(realpath -m "${1:-${KEDA_CONFORMANCE_CACHE:-${HOME}/.cache/keda-conformance}/helm-${HELM}}")
MODULE=helm.sh/helm/v${HELM:1:1}   # v3.22.0 -> helm.sh/helm/v3

step() { printf '[helm %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go >= 1.26) is needed to build helm; install it, or install helm $HELM yourself" >&2
  exit 1
fi

export GOTOOLCHAIN=local CGO_ENABLED=0
mkdir -p "$OUT"

# One build at a time per output directory: test binaries may ask for it in parallel.
exec 9>"$OUT.lock"
if ! flock -n 9; then
  step "another build into $OUT is running; waiting for it"
  flock 9
fi

stamp="$OUT/.built"
want="helm=$HELM"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$OUT/helm" ]; then
  step "up to date in $OUT ($want)"
  exit 0
fi
rm -f "$stamp"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"

step "resolving $MODULE@$HELM from the Go module proxy"
GOMOD=$(go mod download -json "$MODULE@$HELM" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$GOMOD" ] || { echo "error: could not download $MODULE@$HELM" >&2; exit 1; }

# Helm's Makefile stamps the Kubernetes version its client libraries speak (from k8s.io/client-go
# v0.<minor>.x) as the default for `helm template`'s .Capabilities; unstamped it claims v1.20.
CLIENT_GO=$(sed -n 's#^[[:space:]]*k8s\.io/client-go \(v0\.[0-9]*\)\..*#\1#p' "$GOMOD" | head -n1)
[ -n "$CLIENT_GO" ] || { echo "error: $MODULE@$HELM does not require k8s.io/client-go" >&2; exit 1; }
K8S_MINOR=${CLIENT_GO#v0.}
LDF="-s -w -X $MODULE/internal/version.version=$HELM -X $MODULE/internal/version.gitTreeState=clean"
for pkg in pkg/chartutil pkg/lint/rules; do
  LDF="$LDF -X $MODULE/$pkg.k8sVersionMajor=1 -X $MODULE/$pkg.k8sVersionMinor=$K8S_MINOR"
done

step "building helm $HELM (Kubernetes 1.$K8S_MINOR client; about 2 minutes cold on 2 cores)"
GOFLAGS= GOBIN="$W/bin" go install -trimpath -ldflags "$LDF" "$MODULE/cmd/helm@$HELM"
mv "$W/bin/helm" "$OUT/helm"
"$OUT/helm" version --short >&2

echo "$want" > "$stamp"
step "done: $OUT/helm"
