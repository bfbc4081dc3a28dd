#!/usr/bin/env bash
# Builds the test fakes (gcc) into tests/fakes/build/. Idempotent and fast: a fake is rebuilt only when
# its source is newer than the library. scripts/test.sh runs this before the test suites.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p build
build() { # build <output> <sources...>
  local out=$1; shift
  if [ -f "$out" ] && [ -z "$(find "$@" "$0" -newer "$out" 2>/dev/null)" ]; then
    echo "  up to date  $out"; return 0
  fi
  gcc -shared -fPIC -O2 -std=c11 -Wall -Wextra -Werror -fvisibility=hidden -o "$out.tmp" "$@" -lpthread
  mv -f "$out.tmp" "$out"
  echo "  built       $out"
}
build build/libnvidia-ml-fake.so nvml/fake_nvml.c
