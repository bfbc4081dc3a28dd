#!/usr/bin/env bash
# The main job: build, then run gpuops on what this machine has (CUDA when a GPU is present, else the CPU
# backend). With no arguments it generates 32 tokens from the fixture model with `--device auto` (CUDA when a
# GPU and the CUDA engine are present, otherwise the CPU engine). Extra arguments go to gpuops instead
# (e.g. `./scripts/run.sh info`).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/GpuOps.Cli -c Release -nologo -clp:ErrorsOnly >&2
exe=src/GpuOps.Cli/bin/Release/net8.0/gpuops.dll
if [ $# -eq 0 ]; then
  set -- generate tests/data/fortune-llama --prompt "A fortune:" --max-tokens 32 --device auto
fi
exec dotnet "$exe" "$@"
