#!/usr/bin/env bash
# The one test command (README and .ci/run call exactly this). Builds the solution, then runs:
#   1. the PowerShell syntax check (tree-sitter-powershell) of every .ps1/.psm1/.psd1, and the CUDA kernels' syntax
#      check (clang device-only with an NVRTC shim: scripts/kernel-check; skipped, and said so, without clang),
#   2. the xunit.v3 suite (CPU tests; GPU tests skip with a reason where no CUDA GPU is present;
#      hardware tests run against the fake NVML built here with gcc),
#   3. the Pester suite under tests/pester, with pwsh and Pester 5 from the system or, where missing, installed under
#      .tools/ by scripts/pester/setup.sh (the PowerShell .NET tool, the Pester package; skipped, and said so, where
#      neither can be had).
# Ends with one line: "N passed, N failed, N skipped". Exit code 0 only when nothing failed.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
config=${GPUOPS_CONFIGURATION:-Release}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
mkdir -p artifacts
passed=0 failed=0 skipped=0

echo "== build ($config)"
if ! dotnet build GpuOps.sln -c "$config" -nologo -clp:ErrorsOnly; then
  echo "build failed"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi

if [ -x tests/fakes/build.sh ]; then
  echo "== test fakes (gcc)"
  if ! tests/fakes/build.sh; then echo "building the test fakes failed"; failed=$((failed + 1)); fi
fi

echo "== PowerShell syntax (tree-sitter-powershell)"
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d scripts/syntax/node_modules/tree-sitter-powershell ]; then
    (cd scripts/syntax && npm ci --no-audit --no-fund --loglevel=error) || echo "npm ci failed"
  fi
  out=$(node --no-deprecation scripts/syntax/check.mjs "$root" 2>&1); rc=$?
  echo "$out"
  p=$(echo "$out" | sed -n 's/^syntax: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  f=$(echo "$out" | sed -n 's/^syntax: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  if [ -z "$p" ]; then failed=$((failed + 1)); else passed=$((passed + p)); failed=$((failed + f)); fi
  # The checker must also catch errors: feed it a broken file.
  tmp=$(mktemp -d); printf 'function Broken {\n  param([int]$x\n  if ($x -gt) { }\n' > "$tmp/broken.ps1"
  if node --no-deprecation scripts/syntax/check.mjs "$tmp" >/dev/null 2>&1; then
    echo "  FAIL  the syntax checker accepted a broken file"; failed=$((failed + 1))
  else
    echo "  ok    the syntax checker rejects a broken file"; passed=$((passed + 1))
  fi
  rm -rf "$tmp"
else
  echo "node/npm not found: syntax check counted as failed"; failed=$((failed + 1))
fi

echo "== CUDA kernel syntax (clang device-only, scripts/kernel-check)"
out=$(bash scripts/kernel-check/check.sh "$root" 2>&1); rc=$?
echo "$out"
if [ $rc -eq 3 ]; then
  skipped=$((skipped + 1))   # (one: the whole check, said so above)
else
  p=$(echo "$out" | sed -n 's/^kernels: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
  f=$(echo "$out" | sed -n 's/^kernels: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
  if [ -z "$p" ]; then failed=$((failed + 1)); else passed=$((passed + p)); failed=$((failed + f)); fi
  # The checker must also catch errors: a kernel using an undeclared name.
  tmp=$(mktemp -d); mkdir -p "$tmp/kernels"
  printf '#include "common.cuh"\nextern "C" __global__ void broken(float* y) { y[threadIdx.x] = warp_sum_typo(1.f); }\n' > "$tmp/kernels/broken.cu"
  cp kernels/common.cuh "$tmp/kernels/"
  if bash scripts/kernel-check/check.sh "$tmp" >/dev/null 2>&1; then
    echo "  FAIL  the kernel checker accepted a broken kernel"; failed=$((failed + 1))
  else
    echo "  ok    the kernel checker rejects a broken kernel"; passed=$((passed + 1))
  fi
  rm -rf "$tmp"
fi

echo "== xunit (tests/GpuOps.Tests)"
dll=tests/GpuOps.Tests/bin/$config/net8.0/GpuOps.Tests.dll
dotnet "$dll" -noLogo -noColor -xml artifacts/test-results.xml ${GPUOPS_TEST_ARGS:-}
if [ -f artifacts/test-results.xml ]; then
  attr() { grep -o "<assembly [^>]*" artifacts/test-results.xml | grep -o " $1=\"[0-9]*\"" | head -1 | grep -o '[0-9]*'; }
  t_pass=$(attr passed); t_fail=$(attr failed); t_skip=$(attr skipped); t_err=$(attr errors)
  passed=$((passed + ${t_pass:-0})); failed=$((failed + ${t_fail:-0} + ${t_err:-0})); skipped=$((skipped + ${t_skip:-0}))
else
  echo "xunit produced no results"; failed=$((failed + 1))
fi

echo "== Pester (tests/pester)"
pester_count=$(grep -rhoE '^\s*It\s' tests/pester 2>/dev/null | wc -l)
# pwsh and Pester 5: the system's, else the PowerShell .NET tool and the Pester package from NuGet under .tools/
if pester_env=$(bash scripts/pester/setup.sh); then
  rm -f artifacts/pester.txt
  env PATH="$(echo "$pester_env" | sed -n "s/^PATH=//p")" PSModulePath="$(echo "$pester_env" | sed -n "s/^PSModulePath=//p")" \
    pwsh -NoProfile -NonInteractive -File tests/pester/Invoke-Tests.ps1 -ResultPath artifacts/pester.txt
  if [ -f artifacts/pester.txt ]; then
    read -r pp pf ps < artifacts/pester.txt
    passed=$((passed + pp)); failed=$((failed + pf)); skipped=$((skipped + ps))
  else
    echo "Pester produced no results"; failed=$((failed + 1))
  fi
else
  echo "Pester: SKIPPED, no pwsh with Pester 5 here and none could be installed (see above; $pester_count tests in tests/pester)"
  skipped=$((skipped + pester_count))
fi

echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
