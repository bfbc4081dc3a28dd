#Requires -Version 7.4
# The module as a user sees it. Run through tests/pester/Invoke-Tests.ps1 (scripts/test.sh does this when pwsh exists).

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    $script:Manifest = Join-Path $RepoRoot 'GpuOps.psd1'
    Import-Module $Manifest -Force
}

AfterAll {
    Remove-Module GpuOps -Force -ErrorAction SilentlyContinue
}

Describe 'GpuOps module' {
    It 'imports from the repository root and exports the manifest''s cmdlets' {
        $data = Import-PowerShellDataFile $Manifest
        $exported = (Get-Module GpuOps).ExportedCmdlets.Keys | Sort-Object
        $exported | Should -Be ($data.CmdletsToExport | Sort-Object)
    }

    It 'loads its engine assemblies in an isolated load context' {
        $info = Get-GpuOpsInfo
        $alc = [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($info.GetType().Assembly)
        $alc.Name | Should -Be 'GpuOps'
    }

    It 'keeps only its loader in PowerShell''s default load context' {
        $default = [System.Runtime.Loader.AssemblyLoadContext]::Default.Assemblies |
            Where-Object { $_.GetName().Name -like 'GpuOps*' } | ForEach-Object { $_.GetName().Name }
        $default | Should -Be @('GpuOps.PowerShell.Loader')
        $cmdletAssembly = (Get-Command Get-Gpu).ImplementingType.Assembly
        [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($cmdletAssembly).Name | Should -Be 'GpuOps'
        $cmdletAssembly.Location | Should -BeLike (Join-Path $RepoRoot 'module' 'bin' 'deps' '*')
    }

    It 'exports every cmdlet again after Import-Module -Force and after Remove-Module' {
        $count = (Import-PowerShellDataFile $Manifest).CmdletsToExport.Count
        Import-Module $Manifest -Force
        (Get-Module GpuOps).ExportedCmdlets.Count | Should -Be $count
        Remove-Module GpuOps -Force
        Get-Command Get-GpuOpsInfo -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Import-Module $Manifest
        (Get-Command -Module GpuOps -CommandType Cmdlet).Count | Should -Be $count
        (Get-GpuOpsInfo).GpuOpsVersion | Should -Match '^\d+\.\d+\.\d+'
        (Get-Help Get-Gpu).Synopsis.Trim() | Should -Not -BeLike 'Get-Gpu*' -Because 'help is still found after a re-import'
    }

    It 'imports in parallel runspaces (ForEach-Object -Parallel, thread jobs) beside this one' {
        $man = $Manifest
        $counts = 1..3 | ForEach-Object -Parallel {
            Import-Module $using:man
            (Get-Command -Module GpuOps -CommandType Cmdlet).Count
        } -ThrottleLimit 3
        $n = (Import-PowerShellDataFile $Manifest).CmdletsToExport.Count
        $counts | Should -Be @($n, $n, $n)
        (Start-ThreadJob { Import-Module $using:man; (Get-GpuOpsInfo).GpuOpsVersion } | Wait-Job | Receive-Job) | Should -Match '^\d+\.\d+\.\d+'
    }

    It 'works beside another version of a library it ships, loaded first by someone else' {
        # A stand-in System.Numerics.Tensors 1.0.0 (no TensorPrimitives methods) in PowerShell's default context, as
        # another module would bring it; GpuOps' CPU engine calls TensorPrimitives from its own 10.x in its context.
        $dir = Join-Path ([System.IO.Path]::GetTempPath()) ('gpuops-conflict-' + [guid]::NewGuid().ToString('N').Substring(0, 8))
        New-Item -ItemType Directory -Path $dir | Out-Null
        try {
            Set-Content (Join-Path $dir 'Conflict.csproj') @'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup><TargetFramework>net8.0</TargetFramework><AssemblyName>System.Numerics.Tensors</AssemblyName><Version>1.0.0</Version>
  <ImportDirectoryBuildProps>false</ImportDirectoryBuildProps><ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally></PropertyGroup>
</Project>
'@
            Set-Content (Join-Path $dir 'Stub.cs') 'namespace System.Numerics.Tensors { public static class TensorPrimitives { public const int Stub = 1; } }'
            & dotnet build (Join-Path $dir 'Conflict.csproj') -c Release -o (Join-Path $dir 'out') -nologo -v q 2>&1 | Out-Null
            $stub = Join-Path $dir 'out' 'System.Numerics.Tensors.dll'
            Test-Path $stub | Should -BeTrue
            $out = & pwsh -NoProfile -NonInteractive -Command {
                param($stub, $manifest, $model)
                Add-Type -Path $stub
                Import-Module $manifest
                (Invoke-GpuInference -Model $model -Prompt 'You will' -MaxTokens 4 -Temperature 0).Ids -join ','
                [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'System.Numerics.Tensors' } |
                    ForEach-Object { '{0} {1}' -f $_.GetName().Version.Major, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext($_).Name } | Sort-Object
            } -args $stub, $Manifest, (Join-Path $RepoRoot 'tests' 'data' 'fortune-llama')
            $reference = Get-Content (Join-Path $RepoRoot 'tests' 'data' 'fortune-llama' 'reference.json') -Raw | ConvertFrom-Json
            $g = $reference.greedy | Where-Object prompt -EQ 'You will' | Select-Object -First 1
            $out[0] | Should -Be (($g.new_ids | Select-Object -First 4) -join ',')
            $out[1..2] | Should -Be @('1 Default', '10 GpuOps')
        }
        finally {
            Remove-Item -Recurse -Force $dir -ErrorAction SilentlyContinue
        }
    }

    It 'Get-GpuOpsInfo reports versions and every native library' {
        $info = Get-GpuOpsInfo
        $info.GpuOpsVersion | Should -Match '^\d+\.\d+\.\d+'
        $info.Libraries.Count | Should -Be 4
        $info.Backend | Should -BeIn @('cpu', 'cuda')
    }

    It 'Get-Help gives every cmdlet a synopsis, described parameters and examples' {
        foreach ($c in Get-Command -Module GpuOps -CommandType Cmdlet) {
            $h = Get-Help $c.Name -Full
            # (without a help file Get-Help's synopsis is the syntax, which starts with the name)
            $h.Synopsis.Trim() | Should -Not -BeLike "$($c.Name)*" -Because "$($c.Name) should have a synopsis"
            ($h.description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "$($c.Name) should have a description"
            @($h.examples.example).Count | Should -BeGreaterThan 0 -Because "$($c.Name) should have an example"
            foreach ($p in @($h.parameters.parameter | Where-Object { $_ })) {   # (none: Get-GpuOpsInfo)
                ($p.description | Out-String).Trim() | Should -Not -BeNullOrEmpty -Because "$($c.Name) -$($p.name) should be described"
            }
        }
        (Get-Help Set-GpuPowerLimit -Parameter Percent).required | Should -Be 'true'
        (Get-Help about_GpuOps | Out-String) | Should -Match 'Changing power limits safely'
        (Get-Help Get-GpuModel -Parameter Name).globbing | Should -Be 'true'
    }

    It 'every cmdlet has help-friendly metadata (OutputType)' {
        foreach ($c in Get-Command -Module GpuOps -CommandType Cmdlet) {
            $c.OutputType.Count | Should -BeGreaterThan 0 -Because "$($c.Name) should declare OutputType"
        }
    }

    It 'result objects survive Export-Csv' {
        $path = Join-Path ([System.IO.Path]::GetTempPath()) "gpuops-$([guid]::NewGuid()).csv"
        try {
            Get-GpuOpsInfo | Select-Object -ExpandProperty Libraries | Export-Csv -Path $path -NoTypeInformation
            (Import-Csv $path).Count | Should -Be 4
        }
        finally {
            Remove-Item $path -ErrorAction SilentlyContinue
        }
    }
}
