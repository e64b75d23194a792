using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;

namespace DistEmu.Grains;

/// <summary>A NUMA node's frames (pg_data_t's buddy allocator): per-CPU lists refill from here in batches.</summary>
[NumaPlacement]
public sealed class NumaNodeGrain(RunCatalog runs) : Grain, INumaNodeGrain
{
    private NumaNode _node = null!;
    private long _total;
    /// <summary>A CPU allocated or freed here: this activation holds the run's free list (else it is a fresh one).</summary>
    private bool _used;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        string key = this.GetPrimaryKeyString();
        MachineSpec spec = (await runs.Get(GrainFactory, GrainKeys.RunOf(key))).Spec;
        int id = int.Parse(key[(key.LastIndexOf("/node", StringComparison.Ordinal) + 5)..], System.Globalization.CultureInfo.InvariantCulture);
        _node = new NumaNode(id, id * spec.FramesPerNode, spec.FramesPerNode);
        _total = spec.FramesPerNode;
    }

    public Task<long[]> AllocBulk(int max)
    {
        _used = true;
        var frames = new long[max];
        int n = _node.AllocBulk(frames, 0, max);
        return Task.FromResult(n == max ? frames : frames[..n]);
    }

    public Task Free(long[] frames)
    {
        _used = true;
        foreach (long f in frames) _node.Free(f);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The node's share of bringing up the machine's CPUs (the kernel's bringup_nonboot_cpus, which since 6.5 can bring
    /// CPUs up in parallel): the machine asks each node, and each node starts its own CPUs' grains, on its own silo.
    /// </summary>
    public Task StartCpus(int[] tasks, int[] cpus, bool attach)
    {
        string run = GrainKeys.RunOf(this.GetPrimaryKeyString());
        return Fanout.ForEach(Enumerable.Range(0, tasks.Length).ToArray(), i =>
        {
            var cpu = GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, _node.Id, cpus[i]));
            return attach ? cpu.Attach(tasks[i], 0) : cpu.Start(tasks[i], 0); // a replay's client feeds attached CPUs
        });
    }

    public Task<string> Where() => Task.FromResult(GrainContext.Address.SiloAddress?.ToParsableString() ?? "");

    public Task<StatsMessage> GetStats()
    {
        DelayDeactivation(RunLifetime.Release);
        var msg = new StatsMessage { Frames = [_node.FreeFrames, 0, 0, 0, 0, _total] };
        if (!_used) msg.Fresh.Add($"node{_node.Id}");
        return Task.FromResult(msg);
    }
}
