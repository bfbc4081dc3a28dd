#Requires -Version 7.4
# The hardware cmdlets against the fake NVML (tests/fakes/build/libnvidia-ml-fake.so, built by tests/fakes/build.sh).
# .NET does not pass $env: changes to native getenv in this process, so each check runs in a child pwsh that
# inherits GPUOPS_NVML_LIBRARY, FAKE_NVML_STATE and GPUOPS_STATE_DIR; its output comes back deserialized.

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    $script:Manifest = Join-Path $RepoRoot 'GpuOps.psd1'
    $script:Fake = Join-Path $RepoRoot 'tests' 'fakes' 'build' 'libnvidia-ml-fake.so'
    if (-not (Test-Path $Fake)) { & bash (Join-Path $RepoRoot 'tests' 'fakes' 'build.sh') | Out-Null }

    function script:New-FakeState {
        param([string[]] $Lines = @())
        $dir = Join-Path ([System.IO.Path]::GetTempPath()) ("gpuops-pester-" + [guid]::NewGuid().ToString('N').Substring(0, 12))
        New-Item -ItemType Directory -Path $dir | Out-Null
        $t0 = [DateTimeOffset]::UtcNow.ToUnixTimeMilliseconds() / 1000.0
        Set-Content -Path (Join-Path $dir 'state.txt') -Value (@("t0=$t0") + $Lines)
        $env:GPUOPS_NVML_LIBRARY = $Fake
        $env:FAKE_NVML_STATE = Join-Path $dir 'state.txt'
        $env:GPUOPS_STATE_DIR = Join-Path $dir 'state'
        $dir
    }

    function script:Invoke-InChild {
        param([scriptblock] $ScriptBlock)
        & pwsh -NoProfile -NonInteractive -Command $ScriptBlock -args $Manifest
    }

    # (the child's host text: -WhatIf writes "What if: ..." to the host, not to a stream that a script block's
    # serialized output would carry)
    function script:Invoke-InChildText {
        param([string] $Command)
        & pwsh -NoProfile -NonInteractive -Command "Import-Module '$Manifest'; $Command" 2>&1 | Out-String
    }

    function script:Get-FakeLimit {
        param([int] $Gpu)
        $line = Get-Content $env:FAKE_NVML_STATE | Where-Object { $_ -like "gpu$Gpu.limit_mw=*" } | Select-Object -Last 1
        if ($line) { [int]($line -split '=')[1] } else { 700000 }
    }
}

Describe 'Hardware cmdlets on the fake NVML' {
    AfterEach {
        Remove-Item -Path 'Env:GPUOPS_NVML_LIBRARY', 'Env:FAKE_NVML_STATE', 'Env:GPUOPS_STATE_DIR' -ErrorAction SilentlyContinue
    }

    It 'Get-Gpu lists two GPUs as plain objects' {
        $null = New-FakeState
        $gpus = Invoke-InChild { param($m) Import-Module $m; Get-Gpu }
        $gpus.Count | Should -Be 2
        $gpus[1].Uuid | Should -Be 'GPU-fa4e0000-0000-4000-8000-000000000001'
        $gpus[0].PowerLimitWatts | Should -Be 700
    }

    It 'Get-Gpu | Set-GpuPowerLimit -Percent 70 -WhatIf changes nothing' {
        $null = New-FakeState
        $out = Invoke-InChildText 'Get-Gpu | Set-GpuPowerLimit -Percent 70 -WhatIf'
        $out | Should -Match 'What if: .*Set the power limit from 700 W to 490 W'
        ($out | Select-String -Pattern 'What if:' -AllMatches).Matches.Count | Should -Be 2
        Get-FakeLimit 0 | Should -Be 700000
    }

    It 'Set-GpuPowerLimit journals the original and Restore-GpuPowerLimit brings it back in another process' {
        $null = New-FakeState -Lines 'gpu0.limit_mw=650000'
        $set = Invoke-InChild { param($m) Import-Module $m; Set-GpuPowerLimit -Index 0 -Watts 400 -Confirm:$false -PassThru }
        $set.PowerLimitWatts | Should -Be 400
        $set.JournaledOriginalWatts | Should -Be 650
        Get-FakeLimit 0 | Should -Be 400000
        $null = Invoke-InChild { param($m) Import-Module $m; Restore-GpuPowerLimit -Confirm:$false }
        Get-FakeLimit 0 | Should -Be 650000
    }

    It 'refuses values outside the constraints with the allowed range' {
        $null = New-FakeState
        # (a non-terminating error per GPU, as for any failed item: -ErrorAction Stop makes it catchable)
        $err = Invoke-InChild { param($m) Import-Module $m; try { Set-GpuPowerLimit -Index 0 -Watts 150 -Confirm:$false -ErrorAction Stop; 'no error' } catch { $_.FullyQualifiedErrorId + ' ' + $_.CategoryInfo.Category + ' ' + $_.Exception.Message } }
        $err | Should -Match '^PowerLimitOutOfRange,GpuOps\.PowerShell\.Cmdlets\.SetGpuPowerLimitCommand InvalidArgument '
        Get-FakeLimit 0 | Should -Be 700000
        $err | Should -Match '200 W to 700 W'
    }

    It 'Get-GpuTelemetry streams on a schedule and refuses an interval of 0' {
        $null = New-FakeState
        $samples = Invoke-InChild { param($m) Import-Module $m; Get-GpuTelemetry -Interval 00:00:00.01 -Count 5 }
        $samples.Count | Should -Be 10
        $err = Invoke-InChild { param($m) Import-Module $m; try { Get-GpuTelemetry -Interval 0 } catch { $_.FullyQualifiedErrorId } }
        $err | Should -Match 'InvalidInterval'
    }

    It 'Measure-GpuEnergy reports each GPU' {
        $null = New-FakeState -Lines 'gpu0.power_base_mw=300000'
        $r = Invoke-InChild { param($m) Import-Module $m; Measure-GpuEnergy -ScriptBlock { Start-Sleep -Milliseconds 300 } }
        $r.Count | Should -Be 2
        $r[0].Method | Should -Be 'counter'
        $r[0].AveragePowerWatts | Should -BeGreaterThan 250
    }

    It 'Optimize-GpuPowerLimit restores the original limit after the sweep' {
        $null = New-FakeState -Lines 'gpu0.limit_mw=600000'
        $res = Invoke-InChild { param($m) Import-Module $m; Optimize-GpuPowerLimit -Index 0 -StepWatts 250 -WarmupRuns 0 -Runs 1 -ScriptBlock { Start-Sleep -Milliseconds 20; 5 } -Confirm:$false }
        $res.Points.Count | Should -Be 3
        $res.Workload | Should -Be 'the script block'
        $res.Points.ThroughputUnit | Should -Be @('as returned', 'as returned', 'as returned')
        $res.Points.Throughput | Should -Be @(5, 5, 5)
        Get-FakeLimit 0 | Should -Be 600000
    }

    It 'Optimize-GpuPowerLimit -Benchmark completes the built-in GPU workloads' {
        $null = New-FakeState
        $r = Invoke-InChild { param($m) Import-Module $m; (TabExpansion2 -inputScript 'Optimize-GpuPowerLimit -Benchmark ' -cursorColumn 34).CompletionMatches.CompletionText }
        $r | Should -Be @('Gemm', 'Memory')
    }

    It 'Optimize-GpuPowerLimit -Benchmark without a CUDA GPU fails before any limit is set' -Skip:([bool](Get-Command nvidia-smi -ErrorAction SilentlyContinue)) {
        $null = New-FakeState -Lines 'gpu0.limit_mw=600000'
        $r = Invoke-InChild { param($m) Import-Module $m; try { Optimize-GpuPowerLimit -Benchmark memory -StepWatts 250 -Confirm:$false; 'no error' } catch { $_.FullyQualifiedErrorId } }
        $r | Should -Match 'OptimizeGpuPowerLimitCommand$'
        $r | Should -Not -Match 'BenchmarkNotFound'
        Get-FakeLimit 0 | Should -Be 600000
        Get-Content $env:FAKE_NVML_STATE | Where-Object { $_ -like 'calls.set=*' } | Should -BeNullOrEmpty
    }

    It 'Export-GpuTelemetry writes a Prometheus textfile' {
        $dir = New-FakeState
        $prom = Join-Path $dir 'gpu.prom'
        $null = Invoke-InChild { param($m) Import-Module $m; Get-GpuTelemetry | Export-GpuTelemetry -Path (Join-Path $env:GPUOPS_STATE_DIR '..' 'gpu.prom') }
        Get-Content $prom -Raw | Should -Match 'gpuops_power_watts\{gpu="0"'
    }

    It 'Export-GpuTelemetry -WhatIf asks once for a stream of samples and writes nothing' {
        $dir = New-FakeState
        $out = Invoke-InChildText ('Get-GpuTelemetry -Interval 00:00:00.01 -Count 4 | Export-GpuTelemetry -Path ''{0}'' -WhatIf -PassThru' -f (Join-Path $dir 'gpu.prom'))
        ($out | Select-String -Pattern 'What if:' -AllMatches).Matches.Count | Should -Be 1
        $out | Should -Not -Match 'SamplesWritten' -Because '-PassThru reports a write, and -WhatIf wrote nothing'
        Test-Path (Join-Path $dir 'gpu.prom') | Should -BeFalse
    }

    It 'Get-GpuPowerLimit reports a GPU without power management as an error and lists the others' {
        $null = New-FakeState -Lines 'gpu0.limit_mw=unsupported'
        $r = Invoke-InChild { param($m) Import-Module $m; $l = Get-GpuPowerLimit -ErrorVariable e -ErrorAction SilentlyContinue; [pscustomobject]@{ Gpus = @($l.GpuIndex); Errors = @($e.FullyQualifiedErrorId) } }
        $r.Gpus | Should -Be @(1)
        $r.Errors | Should -Be @('NotSupported,GpuOps.PowerShell.Cmdlets.GetGpuPowerLimitCommand')
    }

    It 'an empty selection changes nothing: a filter that matched no GPU, or -Index @()' {
        $null = New-FakeState -Lines 'gpu0.limit_mw=400000', 'gpu1.limit_mw=450000'
        $r = Invoke-InChild {
            param($m)
            Import-Module $m
            Get-Gpu | Where-Object Name -Like '*A100*' | Restore-GpuPowerLimit -Default -Confirm:$false
            try { Set-GpuPowerLimit -Index @() -Watts 300 -Confirm:$false; 'no error' } catch { $_.FullyQualifiedErrorId }
        }
        $r | Should -BeLike 'ParameterArgumentValidationError*'
        Get-FakeLimit 0 | Should -Be 400000
        Get-FakeLimit 1 | Should -Be 450000
    }

    It 'lists the GPUs that exist beside an error for an index that does not' {
        $null = New-FakeState
        $r = Invoke-InChild { param($m) Import-Module $m; $g = Get-Gpu -Index 0, 5, 1 -ErrorVariable e -ErrorAction SilentlyContinue; [pscustomobject]@{ Gpus = @($g.Index); Errors = @($e.FullyQualifiedErrorId) } }
        $r.Gpus | Should -Be @(0, 1)
        $r.Errors | Should -Be @('GpuNotFound,GpuOps.PowerShell.Cmdlets.GetGpuCommand')
    }

    It 'result objects survive Export-Csv' {
        $dir = New-FakeState
        $csv = Join-Path $dir 'telemetry.csv'
        $null = Invoke-InChild { param($m) Import-Module $m; Get-GpuTelemetry | Export-Csv -Path (Join-Path $env:GPUOPS_STATE_DIR '..' 'telemetry.csv') }
        (Import-Csv $csv).Count | Should -Be 2
    }
}
