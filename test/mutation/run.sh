#!/usr/bin/env bash
# Disables each security guard listed in test/mutation/guards.go in a scratch copy of the tree
# and requires a test to fail; prints guard → failing tests. See test/mutation/main.go.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec go run ./test/mutation "$@"
