using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A per-CPU list refill is an exact sync point (no CPU runs ahead of another there) while the order of refills could
/// change more than which frames each CPU gets: under the orleans engine, until a refill has shown the node has plenty.
/// </summary>
[Collection("one silo")]
public sealed class RefillOrderTests(OneSilo cluster)
{
    private async Task<GrainFramePort> Port(long memoryPerNode, int tasks, bool hugePages = false)
    {
        string run = $"run-{Guid.NewGuid():N}";
        var spec = EngineRuns.Small(FaultPolicy.Merged) with { MemoryPerNodeBytes = memoryPerNode };
        await cluster.Grains.GetGrain<IMachineGrain>(run).Configure(new RunConfig { RunId = run, MachineJson = MachineJson.Serialize(spec), Tasks = tasks });
        var machine = new EmuMachine(spec, sanitizer: false, ownsFrames: false);
        return new GrainFramePort(cluster.Grains, run, machine, tasks, hugePages);
    }

    [Fact]
    public async Task A_refill_is_exact_until_the_node_is_known_to_have_plenty_and_stays_exact_when_it_runs_short()
    {
        // 1 GiB a node (262,144 frames) against 8 CPUs × (2,048-op window + 63-frame batch) = 16,888.
        var port = await Port(1L << 30, tasks: 8);
        Assert.True(port.RefillOrderMatters(0), "no refill seen yet: the node's free list is unknown");
        var into = new long[63];
        Assert.Equal(63, await port.AllocBulk(null!, 0, into, 63));
        Assert.False(port.RefillOrderMatters(0), "262,081 frames free after the refill: no interleaving can run the node dry");
        Assert.True(port.RefillOrderMatters(1), "nothing known of node 1 yet");

        // 64 MiB a node (16,384 frames): fewer than the CPUs could take in a window, so order decides who runs short.
        var tight = await Port(64L << 20, tasks: 8);
        Assert.Equal(63, await tight.AllocBulk(null!, 0, into, 63));
        Assert.True(tight.RefillOrderMatters(0), "16,321 frames free: the order of refills may decide who gets them");

        // When a fault may take a THP (512 frames), 1 GiB is not plenty for 8 CPUs' windows: refills stay exact.
        var huge = await Port(1L << 30, tasks: 8, hugePages: true);
        Assert.Equal(63, await huge.AllocBulk(null!, 0, into, 63));
        Assert.True(huge.RefillOrderMatters(0), "262,081 frames free, but 8 windows of 2,048 THP faults could take 8.4 M");
    }
}
