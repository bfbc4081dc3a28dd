#!/usr/bin/env bash
# Build what runs on a GPU host (which has no .NET) into .gpu-host/ (git-ignored), with a packed .NET runtime:
#   .gpu-host/dotnet        launcher for the packed runtime
#   .gpu-host/tests/        the xunit test assembly (framework-dependent)
#   .gpu-host/cli/          gpuops (framework-dependent)
#   .gpu-host/bench/        benchmarks (when the project exists)
# Then call the device tool with carry [".gpu-host", "module/bin"] and run: bash scripts/gpu-host-run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu-host
grep -qx '/.gpu-host/' .git/info/exclude 2>/dev/null || echo '/.gpu-host/' >> .git/info/exclude
shared=${GPUOPS_SHARED:-../shared}
bash "$shared/gpu-host/pack-dotnet-runtime.sh" "$dest"
dotnet build GpuOps.sln -c Release -nologo -clp:ErrorsOnly
dotnet publish tests/GpuOps.Tests -c Release -r linux-x64 --self-contained false -o "$dest/tests" -nologo -clp:ErrorsOnly
dotnet publish src/GpuOps.Cli -c Release -r linux-x64 --self-contained false -o "$dest/cli" -nologo -clp:ErrorsOnly
if [ -d bench/GpuOps.Bench ]; then dotnet publish bench/GpuOps.Bench -c Release -r linux-x64 --self-contained false -o "$dest/bench" -nologo -clp:ErrorsOnly; fi
du -sh "$dest"
