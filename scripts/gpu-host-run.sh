#!/usr/bin/env bash
# Runs on a GPU host, from the repository root, after scripts/publish-gpu-host.sh here and a device call
# carrying .gpu-host. Records, packed as $OUT/gpu-host-run.tgz (folder run/):
#   - nvidia-smi, `gpuops info --json`, the loader's view of the NVIDIA libraries;
#   - the test assembly, GPU tests included; left out there, because they run on CI and need what is not carried
#     (the 64 MiB transfer limit): the module-layout tests (trait Category=Module: module/bin and PowerShell's
#     reference assembly) and the CPU tests on the GGUF fixtures (GpuOps.Tests.Models, GgufFixtureTests: 33 MB of
#     files). The NVML GPU-host tests write their JSON here too;
#   - the NVML read paths through the CLI: inventory, processes, power limits, a 100 Hz telemetry stream for 10 s
#     with its statistics (sample cost, CPU use, cadence jitter), an energy window around a known load (PyTorch
#     matmuls), and the power-capping dry run (`power set --percent 70 --what-if`: nothing is changed);
#   - the Memory benchmark suite with NVML energy per run.
# Never changes a power limit, clock or mode.
set -uo pipefail
# (what it needs, said up front: otherwise every step fails on its own and the dry-run check compares empty files)
if [ ! -f .gpu-host/dotnet ] || [ ! -f .gpu-host/cli/gpuops.dll ]; then
  echo "gpu-host-run: .gpu-host is missing: run scripts/publish-gpu-host.sh on the development machine and carry .gpu-host" >&2; exit 2
fi
if ! command -v nvidia-smi >/dev/null; then
  echo "gpu-host-run: no nvidia-smi here: this script is for a GPU host (the device tool's machine)" >&2; exit 2
fi
TOP=${OUT:-$(pwd)/gpu-host-out}
work=$(mktemp -d)
R="$work/run"
mkdir -p "$R"
export GPUOPS_REPO_ROOT=$(pwd) OUT="$R"
gpuops() { bash .gpu-host/dotnet .gpu-host/cli/gpuops.dll "$@"; }
step() { echo "== $*"; }

step nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit,power.default_limit,power.min_limit,power.max_limit --format=csv | tee "$R/nvidia-smi.txt"
ldconfig -p | grep -E 'libcuda.so|libnvidia-ml|libnvrtc|libcublasLt' > "$R/libs.txt"
step info
gpuops info --json | tee "$R/info.json"

step tests
bash .gpu-host/dotnet .gpu-host/tests/GpuOps.Tests.dll -noLogo -noColor -xml "$R/test-results.xml" ${GPUOPS_TEST_ARGS:--notrait Category=Module -namespace- GpuOps.Tests.Models -class- GpuOps.Tests.Engine.GgufFixtureTests} > "$R/tests.log" 2>&1
grep -E '\[FAIL\]|\[SKIP\]' -A3 "$R/tests.log" | head -80
tail -3 "$R/tests.log"

if [ "${GPUOPS_SKIP_NVML_CLI:-0}" != 1 ]; then
  step nvml
  gpuops gpu list --json > "$R/gpu-list.json"; echo "gpu list rc=$?"
  gpuops gpu processes --json > "$R/gpu-processes.json"; echo "gpu processes rc=$?"
  gpuops power get --json > "$R/power-get.json"; echo "power get rc=$?"
  gpuops telemetry --interval 0.01 --duration 10 --stats --json > "$R/telemetry-100hz-stats.json"; echo "telemetry rc=$?"
  cat "$R/telemetry-100hz-stats.json"
  gpuops telemetry --interval 0.01 --duration 30 --stats --json > "$R/telemetry-100hz-30s-stats.json"; echo "telemetry 30 s rc=$?"
  cat "$R/telemetry-100hz-30s-stats.json"
  gpuops energy --json -- python3 -c "import torch;a=torch.randn(8192,8192,device='cuda',dtype=torch.bfloat16);exec('for _ in range(3000): b=a@a');torch.cuda.synchronize()" > "$R/energy-matmul.json"; echo "energy rc=$?"
  cat "$R/energy-matmul.json"
  gpuops power set --percent 70 --what-if > "$R/power-set-whatif.txt" 2>&1; echo "power set --what-if rc=$?"
  cat "$R/power-set-whatif.txt"
  gpuops power get --json > "$R/power-get-after.json"
  cmp -s "$R/power-get.json" "$R/power-get-after.json" && echo "power limits unchanged by the dry run"
fi

if [ "${GPUOPS_SKIP_BENCH:-0}" != 1 ]; then
  step bench
  gpuops bench --suite Memory --json > "$R/bench-memory.json" 2> "$R/bench-memory.err"; echo "bench rc=$?"
  head -c 1500 "$R/bench-memory.json"; echo
fi

if [ -f .gpu-host/probe/nvml_cost.py ]; then step "NVML call costs (pynvml)"; python3 .gpu-host/probe/nvml_cost.py | tee "$R/nvml-call-costs.txt"; fi
tar czf "$TOP/gpu-host-run.tgz" -C "$work" run
grep -o '<assembly [^>]*' "$R/test-results.xml" | grep -oE ' (total|passed|failed|skipped|errors)="[0-9]+"' | tr -d '\n'; echo
