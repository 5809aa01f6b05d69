#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the real S3 server some tests run against) from
# its Go module, in a throwaway module under the user cache: it is never a
# dependency of the workspace's modules. The binary is cached by version, so
# only the first run builds (minutes on two cores); later runs print its path
# at once. Prints the binary's path on stdout. .ci/run calls this before
# `make test`; platform/testenv (WeedS3Config) runs it with --check, which
# only prints the path, or fails when the binary is not built yet: a test
# fails with the command to run rather than building for minutes or
# skipping.
set -euo pipefail

# Pinned: a version the module proxy serves. Change it here only.
WEED_VERSION="${WEED_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/prism/weed/${WEED_VERSION}"
bin="$cache/weed"
if [ -x "$bin" ]; then
  echo "$bin"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "weed ${WEED_VERSION} is not built at $bin: run scripts/build-weed.sh (minutes, once)" >&2
  exit 1
fi

mkdir -p "$cache"
src="$(mktemp -d "$cache/build-XXXXXX")"
trap 'rm -rf "$src"' EXIT
cd "$src"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export GOWORK=off
go mod init prism-weed-build >/dev/null 2>&1
start=$(date +%s)
echo "building weed ${WEED_VERSION} into $cache (once per version)" >&2
go get "github.com/seaweedfs/seaweedfs@${WEED_VERSION}" >&2
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$src/weed" github.com/seaweedfs/seaweedfs/weed >&2
# Renamed into place whole: a concurrent reader never sees half a binary.
mv "$src/weed" "$bin"
echo "built weed in $(( $(date +%s) - start ))s: $(du -h "$bin" | cut -f1)" >&2
echo "$bin"
