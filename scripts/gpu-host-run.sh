#!/usr/bin/env bash
# Runs on a GPU host (from the repository root, after scripts/publish-gpu-host.sh here and a device call
# carrying .gpu-host): gpuops info, then the test assembly (GPU tests included; the module-layout tests,
# trait Category=Module, need module/bin and PowerShell's reference assembly and run on CI instead).
# Everything is written under $OUT (default ./gpu-host-out).
set -uo pipefail
OUT=${OUT:-$(pwd)/gpu-host-out}
mkdir -p "$OUT"
dn="bash .gpu-host/dotnet"
export GPUOPS_REPO_ROOT=$(pwd)
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv | tee "$OUT/nvidia-smi.txt"
$dn .gpu-host/cli/gpuops.dll info --json | tee "$OUT/info.json"
$dn .gpu-host/tests/GpuOps.Tests.dll -noLogo -noColor -xml "$OUT/test-results.xml" ${GPUOPS_TEST_ARGS:--notrait Category=Module} 2>&1 | tee "$OUT/tests.log" | tail -60
ldconfig -p | grep -E 'libcuda.so|libnvidia-ml|libnvrtc|libcublasLt' > "$OUT/libs.txt"
grep -o '<assembly [^>]*' "$OUT/test-results.xml" | grep -oE ' (total|passed|failed|skipped|errors)="[0-9]+"' | tr -d '\n'; echo
