using DistEmu.Abstractions;

namespace DistEmu.Grains.Tests;

/// <summary>The machine-wide wait-for graph: a cycle across grains is reported with its locks and CPUs, once it stands.</summary>
[Collection("one silo")]
public sealed class WaitGraphTests(OneSilo cluster)
{
    private IWaitGraphGrain Graph() => cluster.Grains.GetGrain<IWaitGraphGrain>($"run-wg-{Guid.NewGuid():N}");

    [Fact]
    public async Task A_cycle_through_two_grains_is_reported_with_its_locks_once_it_stands()
    {
        var g = Graph();
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        Assert.Null(await g.Deadlock()); // not yet: a wake-up may still be in flight
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        var text = await g.Deadlock();
        Assert.NotNull(text);
        Assert.Contains("cpu1 waits for vma_lock vma3 held by cpu2", text);
        Assert.Contains("cpu2 waits for mmap_lock mm0 held by cpu1", text);
    }

    [Fact]
    public async Task A_wake_breaks_the_cycle_even_if_it_arrives_before_the_wait()
    {
        var g = Graph();
        await g.Woke(1, 11); // the wake overtook its wait
        await g.Wait(1, 11, "vma_lock vma3", [2]);
        await g.Wait(2, 22, "mmap_lock mm0", [1]);
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        Assert.Null(await g.Deadlock());

        var h = Graph();
        await h.Wait(1, 11, "vma_lock vma3", [2]);
        await h.Wait(2, 22, "mmap_lock mm0", [1]);
        await h.Woke(2, 22);
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        Assert.Null(await h.Deadlock());
    }

    [Fact]
    public async Task Waits_without_a_cycle_are_no_deadlock()
    {
        var g = Graph();
        await g.Wait(1, 11, "folio_lock frame 7", [3]);
        await g.Wait(2, 22, "vma_lock vma3", [1]);
        await Task.Delay(TimeSpan.FromMilliseconds(700));
        Assert.Null(await g.Deadlock());
    }
}
