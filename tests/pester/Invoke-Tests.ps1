#Requires -Version 7.4
<#
.SYNOPSIS
    Runs the Pester suite in this folder and writes "passed failed skipped" to -ResultPath.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)]
    [string] $ResultPath
)

$ErrorActionPreference = 'Stop'
if (-not (Get-Module -ListAvailable -Name Pester | Where-Object Version -GE ([version]'5.0'))) {
    Write-Warning 'Pester 5 is not installed: Install-Module Pester -MinimumVersion 5.0'
    Set-Content -Path $ResultPath -Value '0 1 0'
    return
}

Import-Module Pester -MinimumVersion 5.0
$config = New-PesterConfiguration
$config.Run.Path = $PSScriptRoot
$config.Run.PassThru = $true
$config.Output.Verbosity = 'Detailed'
$result = Invoke-Pester -Configuration $config
Set-Content -Path $ResultPath -Value ('{0} {1} {2}' -f $result.PassedCount, $result.FailedCount, $result.SkippedCount)
