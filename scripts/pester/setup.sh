#!/usr/bin/env bash
# Makes PowerShell 7 and Pester 5 available to scripts/test.sh without a system install: where `pwsh` is not on PATH,
# the PowerShell .NET tool goes into .tools/pwsh; where pwsh has no Pester 5, the Pester package from the NuGet feed
# goes into .tools/modules/Pester. Prints the PATH and PSModulePath to use (two lines: PATH=..., PSModulePath=...)
# and exits 0, or says why it cannot and exits 1 (scripts/test.sh then skips the Pester suite and says so).
#   bash scripts/pester/setup.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
tools=$root/.tools
PWSH_VERSION=${GPUOPS_PWSH_VERSION:-7.6.10}     # (the PowerShell tool needs the .NET 10 runtime; 7.7.0 does not install here)
PESTER_VERSION=${GPUOPS_PESTER_VERSION:-5.7.1}
path=$PATH
if ! command -v pwsh >/dev/null; then
  if [ ! -x "$tools/pwsh/pwsh" ]; then
    echo "installing the PowerShell $PWSH_VERSION .NET tool into .tools/pwsh" >&2
    dotnet tool install --tool-path "$tools/pwsh" PowerShell --version "$PWSH_VERSION" >&2 \
      || { echo "could not install the PowerShell .NET tool $PWSH_VERSION (dotnet tool install failed)" >&2; exit 1; }
  fi
  path=$tools/pwsh:$PATH
fi
if ! PATH=$path pwsh -NoProfile -NonInteractive -Command 'exit 0' >/dev/null 2>&1; then
  echo "pwsh does not start (PowerShell $PWSH_VERSION needs the .NET 10 runtime)" >&2; exit 1
fi
modpath=${PSModulePath:-}
has_pester() {
  PATH=$path PSModulePath=$1 pwsh -NoProfile -NonInteractive -Command \
    'if (Get-Module -ListAvailable Pester | Where-Object Version -GE ([version]"5.0")) { exit 0 } else { exit 1 }' >/dev/null 2>&1
}
if ! has_pester "$modpath"; then
  pkg=$tools/nuget/pester/$PESTER_VERSION/tools
  if [ ! -f "$pkg/Pester.psd1" ]; then
    echo "fetching Pester $PESTER_VERSION from the NuGet feed into .tools/nuget" >&2
    dotnet restore scripts/pester/PesterDownload.csproj -p:PesterVersion="$PESTER_VERSION" --packages "$tools/nuget" -nologo >&2 \
      || { echo "could not fetch Pester $PESTER_VERSION (dotnet restore failed)" >&2; exit 1; }
  fi
  mkdir -p "$tools/modules"
  ln -sfn "$pkg" "$tools/modules/Pester"
  modpath=$tools/modules${modpath:+:$modpath}
  has_pester "$modpath" || { echo "Pester $PESTER_VERSION does not import from .tools/modules" >&2; exit 1; }
fi
echo "PATH=$path"
echo "PSModulePath=$modpath"
