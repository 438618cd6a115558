#!/usr/bin/env bash
# Builds the local control plane used by the `local` cluster provider: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok (plus kwok's stage files), all from the Go
# module proxy, into an output directory outside the repository.
#
#   build-control-plane.sh [OUTDIR]
#
# OUTDIR defaults to $HOME/.cache/keda-conformance/k8s-$K8S_VERSION. The build is idempotent:
# when OUTDIR already holds binaries of the requested versions it returns at once. Nothing the
# script downloads or builds belongs in git.
#
# Why a wrapper module: k8s.io/kubernetes requires its staging modules at v0.0.0 and maps them
# with `replace ... => ./staging/...`, which only works in its own main module. We create a
# throwaway module that requires k8s.io/kubernetes and replaces every staging module with its
# published v0.<minor>.<patch> tag (the list is read from k8s's own go.mod, never hard-coded).
# etcd's server module has replace lines too, so it is built from inside the same wrapper.
set -euo pipefail

K8S=${K8S_VERSION:-v1.36.3}
KWOK=${KWOK_VERSION:-v0.8.0}
OUT=$(realpath -m "${1:-${HOME}/.cache/keda-conformance/k8s-${K8S}}")
STAGING=v0${K8S#v1}            # v1.36.3 -> v0.36.3
MINOR=$(echo "$K8S" | cut -d. -f2)

step() { printf '[control-plane %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  echo "error: the Go toolchain (go >= 1.26) is needed to build the control plane; install it, or point KEDA_CONFORMANCE_K8S_BIN at a directory holding etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok" >&2
  exit 1
fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
mkdir -p "$OUT"

# One build at a time per output directory: test binaries may ask for it in parallel.
exec 9>"$OUT.lock"
if ! flock -n 9; then
  step "another build into $OUT is running; waiting for it"
  flock 9
fi

stamp="$OUT/.built"
want="k8s=$K8S kwok=$KWOK kubectl=$K8S"
up_to_date() {
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || return 1
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl; do
    [ -x "$OUT/$b" ] || return 1
  done
}
if up_to_date; then
  step "up to date in $OUT ($want)"
  exit 0
fi
rm -f "$stamp"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cd "$W"
printf 'module local.invalid/keda-conformance-control-plane\n\ngo 1.26.0\n\ngodebug default=go1.26\n' > go.mod

step "resolving k8s.io/kubernetes@$K8S from the Go module proxy"
KMOD=$(go mod download -json "k8s.io/kubernetes@$K8S" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
[ -f "$KMOD" ] || { echo "error: could not download k8s.io/kubernetes@$K8S" >&2; exit 1; }
go mod edit -require="k8s.io/kubernetes@$K8S"
n=0
for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$KMOD"); do
  go mod edit -replace="$m=$m@$STAGING"
  n=$((n + 1))
done
step "replaced $n staging modules with their $STAGING releases"

cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
step "downloading modules (go mod tidy; a few minutes on a cold cache)"
go mod tidy

V="-X k8s.io/component-base/version"
LDF="-s -w $V.gitVersion=$K8S $V.gitMajor=1 $V.gitMinor=$MINOR $V.gitTreeState=clean \
 $V.buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ) -X k8s.io/client-go/pkg/version.gitVersion=$K8S"
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  case $b in
    kube-apiserver) step "building $b (the longest step: about 4 minutes cold on 2 cores)" ;;
    *) step "building $b" ;;
  esac
  go build -trimpath -ldflags "$LDF" -o "$OUT/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$OUT/$b.tmp" "$OUT/$b"
done
step "building etcd"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$OUT/etcd.tmp" "$OUT/etcd"

step "building kwok $KWOK"
GOFLAGS= GOBIN="$W/bin" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK" \
  "sigs.k8s.io/kwok/cmd/kwok@$KWOK"
mv "$W/bin/kwok" "$OUT/kwok"

step "copying kwok's stage files"
mkdir -p "$OUT/kwok-stages"
S="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK/kustomize/stage"
cp "$S"/node/fast/node-initialize.yaml "$S"/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
   "$S"/pod/fast/pod-ready.yaml "$S"/pod/fast/pod-complete.yaml "$S"/pod/fast/pod-delete.yaml "$OUT/kwok-stages/"
chmod u+w "$OUT/kwok-stages/"*

echo "$want" > "$stamp"
step "done: $OUT"
