#Requires -Version 7.4
# The cmdlets on a real GPU, as an operator runs them: the real NVML (reads, and power changes only with -WhatIf: a
# lent GPU's limit is never changed), CUDA benchmarks for a GPU piped from Get-Gpu, and the CUDA engine on the fixture
# model. Every test skips where no CUDA GPU (or no NVML) is present; on a GPU host without pwsh,
# scripts/gpu-host-pwsh.sh brings one.

# (-Skip is evaluated during discovery, before BeforeAll runs: what is present is found out here, and again for the run)
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '..' '..' 'GpuOps.psd1') -Force
    $script:HasGpu = (Get-GpuOpsInfo).GpuCount -gt 0
    $script:HasNvml = $false
    try { $script:HasNvml = @(Get-Gpu -ErrorAction Stop).Count -gt 0 } catch { }
}

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    Import-Module (Join-Path $RepoRoot 'GpuOps.psd1') -Force
    $script:HasGpu = (Get-GpuOpsInfo).GpuCount -gt 0
    $script:HasNvml = $false
    try { $script:HasNvml = @(Get-Gpu -ErrorAction Stop).Count -gt 0 } catch { }
    $script:ModelPath = Join-Path $RepoRoot 'tests' 'data' 'fortune-llama'
    $script:Reference = Get-Content (Join-Path $ModelPath 'reference.json') -Raw | ConvertFrom-Json
    # (a journal written by a mistake would land here, not in the host's state folder)
    $script:SavedStateDir = $env:GPUOPS_STATE_DIR
    $env:GPUOPS_STATE_DIR = Join-Path ([System.IO.Path]::GetTempPath()) ('gpuops-pester-gpu-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
}

AfterAll {
    if ($script:Cuda) { $script:Cuda | Remove-GpuModel -Confirm:$false }
    $env:GPUOPS_STATE_DIR = $script:SavedStateDir
    Remove-Module GpuOps -Force -ErrorAction SilentlyContinue
}

Describe 'Hardware cmdlets against the real NVML' {
    It 'Get-Gpu lists the GPUs with their limits and memory' -Skip:(-not $HasNvml) {
        $g = @(Get-Gpu)[0]
        $g.Name | Should -Match 'NVIDIA|H100|H200'
        $g.Uuid | Should -Match '^GPU-[0-9a-f-]+$'
        $g.PowerLimitWatts | Should -BeGreaterThan 0
        $g.MemoryTotalBytes | Should -BeGreaterThan 1GB
    }

    It 'Set-GpuPowerLimit -Percent 70 -WhatIf says what it would do and changes nothing' -Skip:(-not $HasNvml) {
        $before = (Get-GpuPowerLimit -Index 0).PowerLimitWatts
        Get-Gpu -Index 0 | Set-GpuPowerLimit -Percent 70 -WhatIf
        (Get-GpuPowerLimit -Index 0).PowerLimitWatts | Should -Be $before
        (Get-GpuPowerLimit -Index 0).JournaledOriginalWatts | Should -BeNullOrEmpty
        Test-Path (Join-Path $env:GPUOPS_STATE_DIR 'power-journal') | Should -BeFalse
    }

    It 'Optimize-GpuPowerLimit -Benchmark Gemm -WhatIf runs nothing and changes nothing' -Skip:(-not $HasNvml) {
        $before = (Get-GpuPowerLimit -Index 0).PowerLimitWatts
        $r = Get-Gpu -Index 0 | Optimize-GpuPowerLimit -Benchmark Gemm -StepWatts 100 -WhatIf
        $r | Should -BeNullOrEmpty
        (Get-GpuPowerLimit -Index 0).PowerLimitWatts | Should -Be $before
    }

    It 'Get-GpuTelemetry streams samples with power and energy' -Skip:(-not $HasNvml) {
        $s = @(Get-GpuTelemetry -Index 0 -Interval 00:00:00.05 -Count 5)
        $s.Count | Should -Be 5
        $s[-1].EnergyJoules | Should -BeGreaterOrEqual $s[0].EnergyJoules
    }
}

Describe 'Invoke-GpuBenchmark on a real GPU' {
    It 'runs on the GPU piped from Get-Gpu (by its UUID)' -Skip:(-not ($HasGpu -and $HasNvml)) {
        $g = @(Get-Gpu)[0]
        $r = @($g | Invoke-GpuBenchmark -Suite Launch -Quick)
        $r.Count | Should -BeGreaterThan 0
        $r | ForEach-Object { $_.GpuUuid | Should -Be $g.Uuid }
    }

    It 'measures device copy bandwidth with its basis and energy' -Skip:(-not $HasGpu) {
        $copy = Invoke-GpuBenchmark -Suite Memory -Quick | Where-Object Name -EQ 'device copy'
        $copy.Unit | Should -Be 'GB/s'
        $copy.Value | Should -BeGreaterThan 500
        $copy.PeakBasis | Should -Not -BeNullOrEmpty
    }
}

Describe 'The CUDA engine through the cmdlets' {
    BeforeAll {
        if ($HasGpu) { $script:Cuda = Import-GpuModel $ModelPath -Device cuda }
    }

    It 'Import-GpuModel -Device cuda gives a live bfloat16 handle' -Skip:(-not $HasGpu) {
        $Cuda.Device | Should -Match '^cuda'
        $Cuda.DType | Should -Be 'bfloat16'
        $Cuda.IsLoaded | Should -BeTrue
        Get-GpuModel -Id $Cuda.Id | Should -Not -BeNullOrEmpty
    }

    It 'generates greedily, agreeing with the reference at first, with timing and energy' -Skip:(-not $HasGpu) {
        $g = $Reference.greedy[0]
        $r = $Cuda | Invoke-GpuInference -Prompt $g.prompt -MaxTokens 48 -Temperature 0 -IgnoreEos
        $r.GeneratedTokens | Should -Be 48
        $r.Ids[0..7] | Should -Be $g.new_ids[0..7]
        $r.TimeToFirstTokenMs | Should -BeGreaterThan 0
        $r.DecodeTokensPerSecond | Should -BeGreaterThan 100
    }

    It 'reports the batch''s energy and J/token from NVML' -Skip:(-not ($HasGpu -and $HasNvml)) {
        # (long enough for the energy counter: about 0.1 s at the least)
        $r = @('Love is', 'You will', 'A friend', 'The sea') | Invoke-GpuInference -Model $Cuda -MaxTokens 900 -Temperature 0 -IgnoreEos
        $r[0].EnergyJoules | Should -BeGreaterThan 0
        $r[0].JoulesPerToken | Should -Be ($r[0].EnergyJoules / ($r | Measure-Object GeneratedTokens -Sum).Sum)
        $r[0].JoulesPerToken | Should -BeLessThan 10
    }

    It 'runs piped prompts as one batch and streams tokens' -Skip:(-not $HasGpu) {
        $r = @('Love is', 'You will', 'A friend') | Invoke-GpuInference -Model $Cuda -MaxTokens 4 -Temperature 0 -IgnoreEos
        $r.Count | Should -Be 3
        $r | ForEach-Object { $_.BatchSize | Should -Be 3 }
        $t = @($Cuda | Invoke-GpuInference -Prompt 'Love is' -MaxTokens 5 -Temperature 0 -IgnoreEos -Stream)
        $t.Count | Should -Be 5
        $t[-1].IsLast | Should -BeTrue
    }

    It 'measures perplexity within 0.5% of the reference' -Skip:(-not $HasGpu) {
        $p = $Reference.perplexity
        $r = $Cuda | Measure-GpuPerplexity -Path (Join-Path $RepoRoot 'tests' 'data' 'fortune-corpus' $p.file) -Context $p.ctx
        $r.Tokens | Should -Be $p.scored_tokens
        [math]::Abs($r.Ppl / $p.ppl - 1) | Should -BeLessThan 0.005
    }

    It 'Measure-GpuInference reports decode beside its bandwidth bound' -Skip:(-not $HasGpu) {
        $rows = $Cuda | Measure-GpuInference -PromptLength 64 -BatchSize 1, 4 -DecodeTokens 16 -CopyMiB 256
        $decode = @($rows | Where-Object Phase -EQ 'decode')
        $decode.Count | Should -Be 2
        $decode | ForEach-Object { $_.BoundTokensPerSecond | Should -BeGreaterThan 0; $_.FractionOfBound | Should -BeGreaterThan 0 }
    }

    It 'Remove-GpuModel frees the handle' -Skip:(-not $HasGpu) {
        $m = Import-GpuModel $ModelPath -Device cuda
        $m | Remove-GpuModel -Confirm:$false
        $m.IsLoaded | Should -BeFalse
        $m.WorkspaceBytes | Should -Be 0
        { $m | Invoke-GpuInference -Prompt 'x' -MaxTokens 1 -ErrorAction Stop } | Should -Throw -ErrorId 'ModelRemoved,*'
    }
}
