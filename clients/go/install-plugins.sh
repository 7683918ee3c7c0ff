#!/usr/bin/env bash
# Install the Go protoc plugins pinned in clients/go/go.mod (`tool` directives) into .tools/bin.
# Idempotent: does nothing when both binaries already report the pinned versions. Called by
# scripts/generate.sh; prints the bin dir on stdout (logs go to stderr).
#   protoc-gen-go       version = google.golang.org/protobuf in go.mod, i.e. the runtime the
#                       generated code is compiled against
#   protoc-gen-go-grpc  version = google.golang.org/grpc/cmd/protoc-gen-go-grpc in go.mod
# Built from go.mod (not `go install pkg@version`) so the plugins reuse the client's own
# grpc/protobuf downloads: nothing extra is fetched on a fresh CI machine.
# To bump: cd clients/go && go get -tool google.golang.org/grpc/cmd/protoc-gen-go-grpc@vX.Y.Z
# Env: GO (default go), GO_TOOLS_BIN (default <repo>/.tools/bin).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
go=${GO:-go}
bin=${GO_TOOLS_BIN:-$root/.tools/bin}

# required MODULE: its version in go.mod (both the `require (` block and one-line forms).
required() {
    awk -v m="$1" '$1 == m {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$here/go.mod"
}
go_version=$(required google.golang.org/protobuf)
grpc_version=$(required google.golang.org/grpc/cmd/protoc-gen-go-grpc)
[[ -n $go_version && -n $grpc_version ]] || { echo "install-plugins: plugin versions not found in $here/go.mod" >&2; exit 1; }

up_to_date() {
    [[ "$("$bin/protoc-gen-go" --version 2>/dev/null)" == "protoc-gen-go $go_version" ]] &&
        [[ "$("$bin/protoc-gen-go-grpc" --version 2>/dev/null)" == "protoc-gen-go-grpc ${grpc_version#v}" ]]
}
if ! up_to_date; then
    command -v "$go" >/dev/null ||
        { echo "install-plugins: '$go' not found: install the Go toolchain (>= the go line of clients/go/go.mod)" >&2; exit 1; }
    echo "install-plugins: protoc-gen-go $go_version, protoc-gen-go-grpc $grpc_version -> $bin" >&2
    mkdir -p "$bin"
    # -buildvcs=false: no VCS stamping, which fails in containers whose checkout has another owner.
    (cd "$here" && GOBIN=$bin GOFLAGS="-mod=readonly -buildvcs=false" "$go" install tool) >&2
    up_to_date || { echo "install-plugins: $bin does not hold the versions pinned in go.mod" >&2; exit 1; }
fi
echo "$bin"
