# GpuOps' root module. The cmdlets and everything they use load into GpuOps' own assembly load context
# (module/bin/deps), so GpuOps imports beside modules that ship other versions of the same libraries: only the small
# loader (module/bin/GpuOps.PowerShell.Loader.dll) enters PowerShell's default context.

$importModule = Get-Command -Name Import-Module -Module Microsoft.PowerShell.Core
$loaderPath = [System.IO.Path]::Combine($PSScriptRoot, 'bin', 'GpuOps.PowerShell.Loader.dll')

$isReload = $true
if (-not ('GpuOps.PowerShell.Loader.GpuOpsLoadContext' -as [type])) {
    $isReload = $false
    if (-not (Test-Path -LiteralPath $loaderPath -PathType Leaf)) {
        throw "GpuOps is not built: '$loaderPath' is missing. Run 'dotnet build' in the repository root first."
    }
    Add-Type -Path $loaderPath
}

$cmdletAssembly = [GpuOps.PowerShell.Loader.GpuOpsLoadContext]::Initialize()
$innerModule = & $importModule -Assembly $cmdletAssembly -PassThru:$isReload

if ($innerModule) {
    # On a re-import (Import-Module -Force, or after Remove-Module) pwsh takes the cached assembly module and does not
    # add its cmdlets to this module's exports (PowerShell/PowerShell#20710): add them here.
    $addExportedCmdlet = [System.Management.Automation.PSModuleInfo].GetMethod(
        'AddExportedCmdlet',
        [System.Reflection.BindingFlags]'Instance, NonPublic')
    foreach ($cmd in $innerModule.ExportedCmdlets.Values) {
        $addExportedCmdlet.Invoke($ExecutionContext.SessionState.Module, @(, $cmd))
    }
}
