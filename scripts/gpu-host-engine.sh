#!/usr/bin/env bash
# The CUDA engine's GPU-host run (from the repository root on the device machine, carried folder .gpu-host-engine):
#   tests of tests/GpuOps.Tests/CudaEngine, then a Llama-3-8B-shaped random checkpoint written by our own writer,
#   then `GpuOps.Bench inference` (ours + transformers + peer_decode.py in the same run). Results under $OUT.
# Usage: bash .gpu-host-engine/gpu-host-engine.sh [tests|bench|all] [extra bench args...]
set -uo pipefail
OUT=${OUT:-$(pwd)/gpu-host-out}
mkdir -p "$OUT"
E=${GPUOPS_ENGINE_DIR:-.gpu-host-engine}
what=${1:-all}; shift || true
if [ ! -f "$E/dotnet" ]; then
  echo "gpu-host-engine: $E is missing (the publish loop in bench/notes/cuda-engine.md builds it; carry it with the device call)" >&2; exit 2
fi
# kernels from the repository (not the copies published beside the assemblies), so kernel edits need no republish
export GPUOPS_REPO_ROOT=$(pwd) GPUOPS_KERNELS_DIR=$(pwd)/kernels GPUOPS_KERNEL_CACHE=/tmp/gpuops-kernels PYTHONUNBUFFERED=1
dn="bash $E/dotnet"
t0=$(date +%s)
nvidia-smi --query-gpu=name,uuid,serial,pci.bus_id,driver_version,memory.total,power.limit,clocks.sm,clocks.mem --format=csv > "$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/nvidia-smi.txt"
if [ "$what" = tests ] || [ "$what" = all ]; then
  timeout 300 $dn $E/tests/GpuOps.Tests.dll -noLogo -noColor -showLiveOutput -namespace GpuOps.Tests.CudaEngine -xml "$OUT/tests.xml" > "$OUT/tests.log" 2>&1
  echo "tests rc=$? after $(( $(date +%s) - t0 )) s"
  grep -E "relative error|agreement|perplexity|greedy|GB/s|\[FAIL\]|Failed|Passed|Total|Assert|Exception" "$OUT/tests.log" | cut -c1-300 | head -60
fi
if [ "$what" = bench ] || [ "$what" = all ]; then
  df -h /tmp | tail -1
  timeout 120 $dn $E/cli/gpuops.dll model write-random /tmp/llama3-8b-random --force --json > "$OUT/write-random.json" 2>"$OUT/write-random.err"
  echo "write-random rc=$? after $(( $(date +%s) - t0 )) s: $(tail -c 300 "$OUT/write-random.json")"
  timeout 420 $dn $E/bench/GpuOps.Bench.dll inference --model /tmp/llama3-8b-random --out "$OUT" "$@" 2>&1 | tee "$OUT/bench.log" | grep -v "^\s*$" | tail -40
  echo "bench done after $(( $(date +%s) - t0 )) s"
fi
