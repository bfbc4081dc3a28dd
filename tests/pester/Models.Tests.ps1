#Requires -Version 7.4
# Models area: model info, tokenization round trips (run through tests/pester/Invoke-Tests.ps1).

BeforeAll {
    $script:RepoRoot = Resolve-Path (Join-Path $PSScriptRoot '..' '..')
    Import-Module (Join-Path $RepoRoot 'GpuOps.psd1') -Force
    $script:Model = Join-Path $RepoRoot 'tests' 'data' 'fortune-llama'
    $script:Gguf = Join-Path $RepoRoot 'tests' 'data' 'fortune-llama-gguf' 'fortune-llama-q4_k_m.gguf'
    $script:Reference = Get-Content (Join-Path $Model 'reference.json') -Raw | ConvertFrom-Json
}

AfterAll {
    Remove-Module GpuOps -Force -ErrorAction SilentlyContinue
}

Describe 'Get-GpuModelInfo' {
    It 'describes the safetensors fixture' {
        $info = Get-GpuModelInfo $Model
        $info.Architecture | Should -Be 'LlamaForCausalLM'
        $info.Layers | Should -Be 6
        $info.KeyValueHeads | Should -Be 2
        $info.Parameters | Should -Be 6524160
        $info.TokenizerKind | Should -Be 'ByteLevelBpe'
    }

    It 'takes .gguf files from the pipeline' {
        $infos = Get-ChildItem (Split-Path $Gguf) -Filter *.gguf | Get-GpuModelInfo
        $infos.Count | Should -Be 5
        $infos | ForEach-Object { $_.Format | Should -Be 'gguf' }
    }

    It 'expands wildcards in -Path, and says when a pattern matches nothing' {
        $gguf = Join-Path $RepoRoot 'tests' 'data' 'fortune-llama-gguf'
        $expected = (Get-ChildItem (Join-Path $gguf '*.gguf')).Count
        $expected | Should -BeGreaterThan 1
        @(Get-GpuModelInfo (Join-Path $gguf '*.gguf')).Count | Should -Be $expected
        Get-GpuModelInfo (Join-Path $gguf 'no-such-*.gguf') -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Be 'PathNotFound,GpuOps.PowerShell.Cmdlets.GetGpuModelInfoCommand'
        Push-Location $RepoRoot
        try {
            (Get-GpuModelInfo 'tests/data/fortune-ll?ma').Architecture | Should -Be 'LlamaForCausalLM'
            $m = Import-GpuModel 'tests/data/fortune-ll?ma'
            try { $m.IsLoaded | Should -BeTrue } finally { $m | Remove-GpuModel -Confirm:$false }
        }
        finally {
            Pop-Location
        }
    }

    It 'reports a missing path as a non-terminating error' {
        $result = Get-GpuModelInfo (Join-Path $TestDrive 'nope') -ErrorVariable err -ErrorAction SilentlyContinue
        $result | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -Match '^ModelNotFound'
    }
}

Describe 'ConvertTo-GpuToken / ConvertFrom-GpuToken' {
    It 'gives Hugging Face ids for every reference probe' {
        foreach ($probe in $Reference.tokenization) {
            $ids = (ConvertTo-GpuToken $Model -Text $probe.text).Ids
            ($ids -join ',') | Should -Be ($probe.ids -join ',')
        }
    }

    It 'round-trips through the pipeline' {
        $text = 'You will be successful in your work.'
        (ConvertTo-GpuToken $Model $text | ConvertFrom-GpuToken $Model).Text | Should -Be $text
    }

    It 'takes a loaded model (its tokenizer), also piped in, and says when it has been removed' {
        $m = Import-GpuModel $Model -Device cpu
        try {
            (ConvertTo-GpuToken -Model $m -Text 'Hello world').Ids | Should -Be (ConvertTo-GpuToken $Model 'Hello world').Ids
            ($m | ConvertTo-GpuToken -Text 'Hello world' | ConvertFrom-GpuToken -Model $m).Text | Should -Be 'Hello world'
            ($m | ConvertFrom-GpuToken -Id 0, 34, 2307, 27).Text | Should -Be (ConvertFrom-GpuToken $Model -Id 0, 34, 2307, 27).Text
        }
        finally {
            $m | Remove-GpuModel -Confirm:$false
        }
        ConvertTo-GpuToken -Model $m -Text 'Hello' -ErrorVariable err -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $err[0].FullyQualifiedErrorId | Should -BeLike 'ModelRemoved,*'
    }

    It 'reads the tokenizer stored in a GGUF file' {
        (ConvertTo-GpuToken $Gguf 'Hello world').Ids | Should -Be (ConvertTo-GpuToken $Model 'Hello world').Ids
    }
}
