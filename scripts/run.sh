#!/usr/bin/env bash
# The main job: build, then run gpuops on what this machine has (CUDA when a GPU is present, else the CPU
# backend). Extra arguments go to gpuops (default: "info").
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/GpuOps.Cli -c Release -nologo -clp:ErrorsOnly >&2
exe=src/GpuOps.Cli/bin/Release/net8.0/gpuops.dll
if [ $# -eq 0 ]; then set -- info; fi
exec dotnet "$exe" "$@"
