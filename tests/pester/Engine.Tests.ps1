#Requires -Version 7.4
# Inference cmdlets as a user runs them (CPU engine, fixture model). Run through tests/pester/Invoke-Tests.ps1.

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    Import-Module (Join-Path $RepoRoot 'GpuOps.psd1') -Force
    $script:ModelPath = Join-Path $RepoRoot 'tests' 'data' 'fortune-llama'
    $script:Reference = Get-Content (Join-Path $ModelPath 'reference.json') -Raw | ConvertFrom-Json
    $script:Model = Import-GpuModel $ModelPath -Device cpu
}

AfterAll {
    if ($script:Model) { $script:Model | Remove-GpuModel -Confirm:$false }
    Remove-Module GpuOps -Force -ErrorAction SilentlyContinue
}

Describe 'Import-GpuModel / Remove-GpuModel' {
    It 'returns a live handle on the CPU' {
        $Model.GetType().Name | Should -Be 'GpuModelHandle'
        $Model.IsLoaded | Should -BeTrue
        $Model.Device | Should -Be 'cpu'
        $Model.Config.NumLayers | Should -Be 6
    }

    It 'frees a loaded model named by its name, where it is the only one of that name' {
        $copy = Join-Path $TestDrive 'named-model'
        Copy-Item -Recurse $ModelPath $copy
        $m = Import-GpuModel $copy
        Push-Location $TestDrive
        try {
            Set-Location ([System.IO.Path]::GetTempPath())
            Remove-GpuModel named-model -Confirm:$false
        }
        finally {
            Pop-Location
        }
        $m.IsLoaded | Should -BeFalse
    }

    It 'frees a handle, and -WhatIf frees nothing' {
        $m = Import-GpuModel $ModelPath
        $m | Remove-GpuModel -WhatIf
        $m.IsLoaded | Should -BeTrue
        $m | Remove-GpuModel -Confirm:$false
        $m.IsLoaded | Should -BeFalse
    }

    It 'Get-GpuModel lists the loaded models, by name and by id, and pipes them to Remove-GpuModel' {
        $a = Import-GpuModel $ModelPath
        $b = Import-GpuModel $ModelPath
        $ids = (Get-GpuModel).Id
        $ids | Should -Contain $a.Id
        $ids | Should -Contain $b.Id
        $ids | Should -Contain $Model.Id
        (Get-GpuModel -Id $b.Id) | Should -Be $b
        @(Get-GpuModel -Name 'FORTUNE*' | Where-Object Id -In $a.Id, $b.Id).Count | Should -Be 2
        Get-GpuModel -Name 'no-such-model' -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'ModelNotLoaded,GpuOps.PowerShell.Cmdlets.GetGpuModelCommand'
        Get-GpuModel -Id $a.Id, $b.Id | Remove-GpuModel -Confirm:$false
        $a.IsLoaded | Should -BeFalse
        $b.IsLoaded | Should -BeFalse
        (Get-GpuModel).Id | Should -Not -Contain $a.Id
        $Model.IsLoaded | Should -BeTrue
        (TabExpansion2 -inputScript 'Get-GpuModel -Name fort' -cursorColumn 23).CompletionMatches.CompletionText | Should -Contain 'fortune-llama'
    }

    It 'says plainly that CUDA inference needs a GPU where none is present' -Skip:([bool](Get-Command nvidia-smi -ErrorAction SilentlyContinue)) {
        { Import-GpuModel $ModelPath -Device cuda -ErrorAction Stop } | Should -Throw -ErrorId 'CudaEngineNotAvailable*'
    }
}

Describe 'Invoke-GpuInference' {
    It 'reproduces the greedy reference for 48 tokens' {
        $g = $Reference.greedy[0]
        $r = $Model | Invoke-GpuInference -Prompt $g.prompt -MaxTokens 48 -Temperature 0 -IgnoreEos
        $r.Ids | Should -Be $g.new_ids
        $r.Text | Should -Be $g.text
    }

    It 'runs piped prompts together as one batch' {
        $r = 'Love is', 'You will' | Invoke-GpuInference -Model $Model -MaxTokens 4
        $r.Count | Should -Be 2
        $r | ForEach-Object { $_.BatchSize | Should -Be 2 }
    }

    It 'says what happened when a piped model meets a positional prompt, and takes tokens'' Text as the prompt' {
        { $Model | Invoke-GpuInference 'A fortune:' -MaxTokens 2 } | Should -Throw -ErrorId 'TextInModelPosition,*'
        { $Model | ConvertTo-GpuToken 'A fortune:' } | Should -Throw -ErrorId 'TextInModelPosition,*'
        $r = ConvertTo-GpuToken -Model $Model -Text 'Love is' | Invoke-GpuInference -Model $Model -MaxTokens 3 -Temperature 0
        $r.Prompt | Should -Be 'Love is'
        ($Model | Invoke-GpuInference -Prompt 'Love is' -MaxTokens 3 -Temperature 0 -Stop $null).GeneratedTokens | Should -Be 3
    }

    It 'takes the name of a loaded model for -Model, so a result pipes on to ConvertFrom-GpuToken' {
        Push-Location $TestDrive   # (no folder of that name here: the loaded model is meant)
        try {
            $r = $Model | Invoke-GpuInference -Prompt 'Love is' -MaxTokens 3 -Temperature 0
            ($r | ConvertFrom-GpuToken).Text | Should -Be $r.Text
            (ConvertTo-GpuToken -Model $Model.Name -Text 'Love is').Ids | Should -Be $r.PromptIds
        }
        finally {
            Pop-Location
        }
    }

    It 'streams one object per token' {
        $tokens = $Model | Invoke-GpuInference -Prompt 'You will' -MaxTokens 10 -IgnoreEos -Stream
        $tokens.Count | Should -Be 10
        $tokens[-1].IsLast | Should -BeTrue
    }

    It 'accepts a model path (relative to the current location) for one command' {
        $r = Invoke-GpuInference -Model $ModelPath -Prompt 'Love is' -MaxTokens 3
        $r.GeneratedTokens | Should -Be 3
        Push-Location (Join-Path $RepoRoot 'tests' 'data')
        try {
            $r = Invoke-GpuInference -Model ./fortune-llama -Prompt 'Love is' -MaxTokens 2
            $r.GeneratedTokens | Should -Be 2
        }
        finally {
            Pop-Location
        }
    }

    It 'takes a folder object from Get-Item or Get-ChildItem as the model, piped or named' {
        $g = $Reference.greedy[0]
        (Get-Item $ModelPath | Invoke-GpuInference -Prompt $g.prompt -MaxTokens 2 -Temperature 0 -IgnoreEos).Ids | Should -Be $g.new_ids[0..1]
        (Invoke-GpuInference -Model (Get-Item $ModelPath) -Prompt $g.prompt -MaxTokens 2 -Temperature 0 -IgnoreEos).Ids | Should -Be $g.new_ids[0..1]
        (Get-ChildItem (Join-Path $RepoRoot 'tests' 'data') -Directory -Filter fortune-llama | ConvertTo-GpuToken -Text 'hello').Count | Should -BeGreaterThan 1
    }

    It 'stops promptly when the pipeline is stopped (Ctrl+C) and leaves the model usable' {
        $ps = [powershell]::Create()
        try {
            $null = $ps.AddScript({
                param($manifest, $m)
                Import-Module $manifest
                Invoke-GpuInference -Model $m -Prompt 'You will' -MaxTokens 1000 -IgnoreEos -Stream
            }).AddArgument((Join-Path $RepoRoot 'GpuOps.psd1')).AddArgument($Model)
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]$null, $output)
            $deadline = [DateTime]::UtcNow.AddSeconds(30)
            while ($output.Count -lt 5 -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 20 }
            $output.Count | Should -BeGreaterOrEqual 5 -Because 'tokens stream while it runs'
            $sw = [System.Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()   # (what Ctrl+C does)
            $sw.Elapsed.TotalSeconds | Should -BeLessThan 2
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            $output.Count | Should -BeLessThan 1000
        }
        finally {
            $ps.Dispose()
        }
        $Model.IsLoaded | Should -BeTrue
        ($Model | Invoke-GpuInference -Prompt $Reference.greedy[0].prompt -MaxTokens 4 -Temperature 0).Ids | Should -Be ($Reference.greedy[0].new_ids | Select-Object -First 4)
    }

    It 'result objects survive remoting (serialized and back) with their data' {
        $r = $Model | Invoke-GpuInference -Prompt 'You will' -MaxTokens 4 -Temperature 0
        $d = [System.Management.Automation.PSSerializer]::Deserialize([System.Management.Automation.PSSerializer]::Serialize($r, 3))
        $d.pstypenames[0] | Should -Be 'Deserialized.GpuOps.Core.Engine.GpuInferenceResult'
        $d.Text | Should -Be $r.Text
        @($d.Ids) | Should -Be @($r.Ids)
        $d.GeneratedTokens | Should -Be 4
        $d.TimeToFirstTokenMs | Should -Be $r.TimeToFirstTokenMs
        ($d | Out-String) | Should -Match 'GeneratedTokens\s+: 4'   # (the view applies to the deserialized object too)
    }

    It 'result objects survive Export-Csv' {
        $csv = Join-Path $TestDrive 'inference.csv'
        $Model | Invoke-GpuInference -Prompt 'Love is' -MaxTokens 3 | Export-Csv $csv
        (Import-Csv $csv).Prompt | Should -Be 'Love is'
    }
}

Describe 'Measure-GpuPerplexity and Measure-GpuInference' {
    It 'asks for the text file when a piped model would give -Path its own folder' {
        { $Model | Measure-GpuPerplexity -Context 64 -MaxWindows 1 } | Should -Throw -ErrorId 'TextFileRequired,*'
        # (a file piped in still binds -Path by its FullName)
        $r = Get-Item (Join-Path $RepoRoot 'tests' 'data' 'fortune-corpus' 'test.txt') | Measure-GpuPerplexity -Model $Model -Context 64 -MaxWindows 1
        $r.Windows | Should -Be 1
    }

    It 'measures perplexity on a subset of windows' {
        $r = $Model | Measure-GpuPerplexity -Path (Join-Path $RepoRoot 'tests' 'data' 'fortune-corpus' 'test.txt') -Context 128 -MaxWindows 3
        $r.Windows | Should -Be 3
        $r.Tokens | Should -Be (3 * 127)
        $r.Subset | Should -BeTrue
    }

    It 'reports decode throughput beside its bandwidth bound' {
        $rows = $Model | Measure-GpuInference -PromptLength 8 -BatchSize 1 -DecodeTokens 2 -CopyMiB 16
        ($rows | Where-Object Phase -eq 'decode').BoundTokensPerSecond | Should -BeGreaterThan 0
    }
}
