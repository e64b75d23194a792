using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;

namespace DistEmu.Grains.Tests;

/// <summary>
/// After a silo is lost, a grain of the run can be activated anew on a survivor, without the state that went with the
/// silo. Its counters must then be named as missing, never read as zeros or as a node whose every frame is free.
/// </summary>
[Collection("one silo")]
public sealed class FreshActivationTests(OneSilo cluster)
{
    private async Task<string> ConfiguredRun()
    {
        string run = $"run-{Guid.NewGuid():N}";
        await cluster.Grains.GetGrain<IMachineGrain>(run).Configure(new RunConfig
        {
            RunId = run,
            MachineJson = MachineJson.Serialize(EngineRuns.Small(FaultPolicy.Merged)),
            Tasks = 1,
        });
        return run;
    }

    [Fact]
    public async Task A_node_that_served_no_cpu_says_it_is_fresh_and_one_that_did_does_not()
    {
        string run = await ConfiguredRun();
        var fresh = await cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, 1)).GetStats();
        Assert.Equal(["node1"], fresh.Fresh);
        var used = cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, 0));
        Assert.NotEmpty((await used.AllocBulk(4)).Frames);
        var stats = await used.GetStats();
        Assert.Empty(stats.Fresh);
        Assert.Equal(stats.Frames[5] - 4, stats.Frames[0]); // its real free list: four frames out
    }

    [Fact]
    public async Task An_mm_that_served_no_cpu_says_it_is_fresh()
    {
        string run = await ConfiguredRun();
        var mm = cluster.Grains.GetGrain<IMmGrain>(GrainKeys.Mm(run, 0));
        Assert.Equal(["mm0"], (await mm.CollectStats([])).Fresh);
        await mm.GetTree(0);
        Assert.Empty((await mm.CollectStats([])).Fresh);
    }

    [Fact]
    public async Task A_vma_grain_that_was_never_initialised_answers_fresh_and_the_mm_names_it_lost_unless_it_retired()
    {
        string run = await ConfiguredRun();
        var stats = await cluster.Grains.GetGrain<IVmaGrain>(GrainKeys.Vma(run, 0, 1, 17)).GetStats();
        Assert.Equal([17], stats.FreshVmas);
        Assert.Empty(stats.VmStat);

        // The mm made a VMA that no node could read: a fresh answer for it means its counters went with its silo.
        var mm = cluster.Grains.GetGrain<IMmGrain>(GrainKeys.Mm(run, 0));
        await mm.Syscall(new Caller { Cpu = 0, Node = 0 }, OpMessages.From(Kernel.Workloads.Op.MapAnon(0x1000_0000, 1 << 20)));
        int vma = Assert.Single((await mm.VmasByNode()).SelectMany(kv => kv.Value));
        var collected = await mm.CollectStats([vma]);
        Assert.Equal([$"vma{vma} (its state was lost with its silo)"], collected.Lost);
        // One it never made (or that retired and handed its counters over) is not lost.
        Assert.Empty((await mm.CollectStats([vma + 100])).Lost);
    }
}
