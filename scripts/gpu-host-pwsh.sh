#!/usr/bin/env bash
# The Pester suites on a GPU host, which has neither .NET nor PowerShell: this machine packs PowerShell (the .NET tool
# that scripts/pester/setup.sh installs, trimmed to what runs on linux-x64), Pester and the built module; the host
# unpacks them beside the .NET runtime that .gpu-host-engine carries and runs Pester with the real GPU and NVML.
#   here:  bash scripts/pester/setup.sh && dotnet build GpuOps.sln -c Release && bash scripts/gpu-host-pwsh.sh pack
#          (-> .gpu-host-pwsh/, about 20 MB; the device call carries .gpu-host-pwsh, .gpu-host-engine/dotnet and
#          .gpu-host-engine/dotnet-runtime.tar.xz, plus tests/fakes/build for Hardware.Tests.ps1)
#   there: bash scripts/gpu-host-pwsh.sh run [test files...]   (default: Gpu, Compute and Engine .Tests.ps1)
#          -> $OUT/pester.xml (NUnit), $OUT/pester.log, and a last line "pester: N passed, N failed, N skipped"
# Power limits: Gpu.Tests.ps1 changes none (-WhatIf only); Hardware.Tests.ps1 changes only the fake NVML's.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
P=$root/.gpu-host-pwsh
what=${1:-}; shift || true
case "$what" in
pack)
  unix=$(ls -d "$root"/.tools/pwsh/.store/powershell/*/powershell/*/tools/net10.0/any/unix 2>/dev/null | tail -1)
  [ -n "$unix" ] && [ -f "$unix/pwsh.dll" ] || { echo "gpu-host-pwsh: no PowerShell tool under .tools/pwsh (run scripts/pester/setup.sh)" >&2; exit 2; }
  pester=$(readlink -f "$root/.tools/modules/Pester")
  [ -f "$pester/Pester.psd1" ] || { echo "gpu-host-pwsh: no Pester under .tools/modules (run scripts/pester/setup.sh)" >&2; exit 2; }
  [ -f "$root/module/bin/GpuOps.PowerShell.Loader.dll" ] && [ -d "$root/en-US" ] || { echo "gpu-host-pwsh: the module is not built (dotnet build GpuOps.sln -c Release)" >&2; exit 2; }
  rm -rf "$P" && mkdir -p "$P/modules"
  # (not needed to run scripts: the compiler behind Add-Type -TypeDefinition, reference assemblies, other platforms)
  tar -C "$unix" -cJf "$P/pwsh.tar.xz" --exclude=./ref --exclude='./Microsoft.CodeAnalysis*.dll' \
      --exclude='./runtimes/win*' --exclude='./runtimes/osx*' --exclude='./runtimes/android*' --exclude='./runtimes/maccatalyst*' \
      --exclude='./runtimes/linux-arm*' --exclude='./runtimes/linux-musl*' --exclude='./runtimes/linux-bionic*' \
      --exclude=./Modules/Microsoft.PowerShell.PSResourceGet --exclude=./Modules/PowerShellGet --exclude=./Modules/PackageManagement .
  cp -rL "$pester" "$P/modules/Pester"
  tar -C "$root" -cJf "$P/module.tar.xz" module/bin en-US
  echo "gpu-host-pwsh: packed $(du -sh "$P" | cut -f1) into .gpu-host-pwsh"
  ;;
run)
  OUT=${OUT:-$root/gpu-host-out}
  mkdir -p "$OUT"
  E=${GPUOPS_ENGINE_DIR:-.gpu-host-engine}
  for f in "$P/pwsh.tar.xz" "$P/module.tar.xz" "$P/modules/Pester/Pester.psd1" "$E/dotnet" "$E/dotnet-runtime.tar.xz"; do
    [ -f "$f" ] || { echo "gpu-host-pwsh: $f is missing (pack here; carry .gpu-host-pwsh, $E/dotnet and $E/dotnet-runtime.tar.xz)" >&2; exit 2; }
  done
  bash "$E/dotnet" --list-runtimes > /dev/null || { echo "gpu-host-pwsh: the packed .NET runtime does not start" >&2; exit 2; }
  rt=$(cd "$E/runtime" && pwd)
  ps=/tmp/gpuops-pwsh
  rm -rf "$ps" && mkdir -p "$ps/bin" && tar -C "$ps" -xJf "$P/pwsh.tar.xz"
  printf '#!/usr/bin/env bash\nexport DOTNET_ROOT=%s DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1\nexec %s/dotnet %s/pwsh.dll "$@"\n' "$rt" "$rt" "$ps" > "$ps/bin/pwsh"
  chmod +x "$ps/bin/pwsh"
  tar -C "$root" -xJf "$P/module.tar.xz"
  export PATH=$ps/bin:$PATH PSModulePath=$P/modules GPUOPS_REPO_ROOT=$root GPUOPS_KERNELS_DIR=$root/kernels GPUOPS_KERNEL_CACHE=/tmp/gpuops-kernels
  files=("$@")
  [ ${#files[@]} -gt 0 ] || files=(tests/pester/Gpu.Tests.ps1 tests/pester/Compute.Tests.ps1 tests/pester/Engine.Tests.ps1)
  list=$(printf "'%s'," "${files[@]}"); list=${list%,}
  pwsh -NoProfile -NonInteractive -Command "\$PSVersionTable.PSVersion.ToString()" || { echo "gpu-host-pwsh: pwsh does not start" >&2; exit 2; }
  timeout 540 pwsh -NoProfile -NonInteractive -Command "
    Import-Module Pester -MinimumVersion 5.0
    \$c = New-PesterConfiguration
    \$c.Run.Path = @($list)
    \$c.Run.PassThru = \$true
    \$c.Output.Verbosity = 'Detailed'
    \$c.TestResult.Enabled = \$true
    \$c.TestResult.OutputPath = '$OUT/pester.xml'
    \$r = Invoke-Pester -Configuration \$c
    'pester: {0} passed, {1} failed, {2} skipped' -f \$r.PassedCount, \$r.FailedCount, \$r.SkippedCount" 2>&1 | tee "$OUT/pester.log" | grep -vE '^\s*$'
  ;;
*)
  echo "usage: bash scripts/gpu-host-pwsh.sh pack | run [test files...]" >&2; exit 2 ;;
esac
