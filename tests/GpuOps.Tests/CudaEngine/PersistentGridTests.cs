using GpuOps.Cuda.Engine;
using Xunit;

namespace GpuOps.Tests.CudaEngine;

/// <summary>The persistent decode kernel's grid choice (no GPU needed).</summary>
public class PersistentGridTests
{
    [Theory]
    [InlineData(132, 32, 4096, 14336, 128)]   // Llama-3-8B on an H100/H200: 4 blocks per head, q/k/v in 3 whole rounds, 14 chunks of W_down each
    [InlineData(132, 64, 8192, 28672, 128)]   // 64 heads: the same 128 (28672 / 128 = 224 columns: the fused MLP phase is off either way)
    [InlineData(132, 40, 5120, 13824, 132)]   // 120 would idle 9% of the multiprocessors
    [InlineData(132, 28, 3584, 18944, 132)]   // 112: 15% idle
    [InlineData(132, 4, 256, 704, 132)]       // the fixture: 132 is a multiple of 4
    [InlineData(114, 32, 4096, 14336, 114)]   // 96 would idle 16%
    [InlineData(122, 8, 4096, 14336, 120)]    // 120 >= 0.95 x 122, and 14336 / 120 = 120 columns still fit
    public void ChoosesAMultipleOfTheHeadsWhereFewMultiprocessorsIdle(int sms, int nh, int h, int i, int want) =>
        Assert.Equal(want, CudaLlamaEngine.ChoosePersistentGrid(sms, nh, h, i));

    [Fact]
    public void KeepsEveryMultiprocessorWhereTheFusedMlpSlicesWouldNoLongerFit()
    {
        // 120 blocks: 14336 / 120 -> 120 columns a block (the most the fused MLP phase takes); 119 (7 heads): 121
        Assert.Equal(120, CudaLlamaEngine.ChoosePersistentGrid(120, 7, 4096, 14336));
        // 126 -> 119 would be within 5% and fits for a smaller intermediate size
        Assert.Equal(119, CudaLlamaEngine.ChoosePersistentGrid(120, 7, 4096, 11008));
    }
}
