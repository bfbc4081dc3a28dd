#Requires -Version 7.4
# Invoke-GpuBenchmark as a user sees it. GPU parts skip where no CUDA GPU is present.

# (-Skip is evaluated during discovery, before BeforeAll runs: whether a GPU is present is found out here)
BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot '..' '..' 'GpuOps.psd1') -Force
    $script:HasGpu = (Get-GpuOpsInfo).GpuCount -gt 0
}

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    Import-Module (Join-Path $RepoRoot 'GpuOps.psd1') -Force
    $script:HasGpu = (Get-GpuOpsInfo).GpuCount -gt 0
}

AfterAll {
    Remove-Module GpuOps -Force -ErrorAction SilentlyContinue
}

Describe 'Invoke-GpuBenchmark' {
    It 'is exported with its suites and declares its output type' {
        $cmd = Get-Command Invoke-GpuBenchmark
        $cmd.OutputType.Name | Should -Contain 'GpuOps.Cuda.Bench.BenchmarkResult'
        $cmd.Parameters['Suite'].Attributes.ValidValues | Should -Contain 'Gemm'
        $cmd.Parameters['Device'].Aliases | Should -Contain 'Index'
    }

    It 'rejects an unknown suite before running anything' {
        { Invoke-GpuBenchmark -Suite Nonsense } | Should -Throw
    }

    It 'fails with a terminating error when there is no GPU' -Skip:$HasGpu {
        { Invoke-GpuBenchmark -Suite Launch -Quick -ErrorAction Stop } | Should -Throw
    }

    It 'measures launch overhead with the median, min and max of event-timed runs' -Skip:(-not $HasGpu) {
        $r = Invoke-GpuBenchmark -Suite Launch -Quick
        $r.Count | Should -BeGreaterOrEqual 2
        $r | ForEach-Object {
            $_.Unit | Should -Be 'µs'
            $_.MinMs | Should -BeLessOrEqual $_.MedianMs
            $_.MaxMs | Should -BeGreaterOrEqual $_.MedianMs
            $_.GpuName | Should -Not -BeNullOrEmpty
        }
    }

    It 'states the basis of every percentage of peak' -Skip:(-not $HasGpu) {
        $r = Invoke-GpuBenchmark -Suite Memory -Quick
        ($r | Where-Object Name -eq 'device copy').PeakBasis | Should -Match 'GB/s'
        $r | Export-Csv -Path (Join-Path $TestDrive 'bench.csv') -NoTypeInformation
        (Import-Csv (Join-Path $TestDrive 'bench.csv')).Count | Should -Be $r.Count
    }
}
