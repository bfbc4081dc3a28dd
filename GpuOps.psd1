@{
    # GpuOps: typed GPU operations for PowerShell 7.4+ (build with `dotnet build`, then Import-Module ./GpuOps.psd1).
    RootModule           = 'module/GpuOps.psm1'
    ModuleVersion        = '0.1.0'
    GUID                 = '5b0d3c41-8a57-4c47-9d0e-6f4f1d2a9c7e'
    Author               = 'GpuOps contributors'
    CompanyName          = 'GpuOps'
    Copyright            = '(c) 2026 GpuOps contributors. MIT License.'
    Description          = 'NVIDIA GPU operations as typed PowerShell pipelines: inventory, telemetry, energy and safe power capping (NVML), CUDA kernels and benchmarks, model loading (safetensors, GGUF), tokenizers and LLM inference.'
    CompatiblePSEditions = @('Core')
    PowerShellVersion    = '7.4'
    FormatsToProcess     = @(
        'module/formats/GpuOps.Core.Format.ps1xml'
        'module/formats/GpuOps.Compute.Format.ps1xml'
        'module/formats/GpuOps.Engine.Format.ps1xml'
        'module/formats/GpuOps.Models.Format.ps1xml'
        'module/formats/GpuOps.Nvml.Format.ps1xml'
    )
    CmdletsToExport      = @(
        'Get-GpuOpsInfo'
        'Get-GpuModelInfo'
        'ConvertTo-GpuToken'
        'ConvertFrom-GpuToken'
        'Import-GpuModel'
        'Get-GpuModel'
        'Remove-GpuModel'
        'Invoke-GpuInference'
        'Measure-GpuPerplexity'
        'Measure-GpuInference'
        'Get-Gpu'
        'Get-GpuProcess'
        'Get-GpuTelemetry'
        'Measure-GpuEnergy'
        'Get-GpuPowerLimit'
        'Set-GpuPowerLimit'
        'Restore-GpuPowerLimit'
        'Optimize-GpuPowerLimit'
        'Export-GpuTelemetry'
        'Invoke-GpuBenchmark'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags         = @('GPU', 'NVIDIA', 'CUDA', 'NVML', 'LLM', 'Inference', 'PowerCapping', 'Benchmark', 'Linux', 'Windows', 'PSEdition_Core')
            LicenseUri   = 'https://github.com/gpuops/GpuOps/blob/main/LICENSE'
            ProjectUri   = 'https://github.com/gpuops/GpuOps'
            ReleaseNotes = 'See README.md.'
        }
    }
}
