using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;

namespace DistEmu.Grains;

/// <summary>A NUMA node's frames (pg_data_t's buddy allocator): per-CPU lists refill from here in batches.</summary>
[NumaPlacement]
public sealed class NumaNodeGrain : Grain, INumaNodeGrain
{
    private NumaNode _node = null!;
    private long _total;
    /// <summary>A CPU allocated or freed here: this activation holds the run's free list (else it is a fresh one).</summary>
    private bool _used;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        string key = this.GetPrimaryKeyString();
        var config = await GrainFactory.GetGrain<IMachineGrain>(GrainKeys.RunOf(key)).GetConfig();
        MachineSpec spec = MachineJson.Deserialize(config.MachineJson);
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

    public Task<string> Where() => Task.FromResult(GrainContext.Address.SiloAddress?.ToParsableString() ?? "");

    public Task<StatsMessage> GetStats()
    {
        DelayDeactivation(RunLifetime.Release);
        var msg = new StatsMessage { Frames = [_node.FreeFrames, 0, 0, 0, 0, _total] };
        if (!_used) msg.Fresh.Add($"node{_node.Id}");
        return Task.FromResult(msg);
    }
}
