using DistEmu.Kernel.Memory;

namespace DistEmu.Kernel.Tests;

/// <summary>A node's frames: never-used ones first, then freed ones, last freed first (what keeps frame numbers stable).</summary>
public class NumaNodeTests
{
    [Fact]
    public void Freed_frames_come_back_last_freed_first_across_many_chunks_and_the_count_holds()
    {
        var node = new NumaNode(1, firstFrame: 100_000, frameCount: 20_000);
        var all = new long[20_000];
        Assert.Equal(20_000, node.AllocBulk(all, 0, all.Length));
        Assert.Equal(0, node.FreeFrames);
        // 10,000 frees cross two chunk boundaries of the free list.
        for (int i = 0; i < 10_000; i++) node.Free(all[i]);
        Assert.Equal(10_000, node.FreeFrames);
        var back = new long[10_000];
        Assert.Equal(10_000, node.AllocBulk(back, 0, back.Length));
        for (int i = 0; i < back.Length; i++)
            Assert.Equal(all[9_999 - i], back[i]);
        Assert.Equal(0, node.AllocBulk(back, 0, 1));
        Assert.Throws<InvalidOperationException>(() => node.Free(99_999));
    }
}
