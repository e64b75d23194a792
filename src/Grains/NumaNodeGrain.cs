using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;

namespace DistEmu.Grains;

/// <summary>
/// A NUMA node's frames (pg_data_t's buddy allocator): per-CPU lists refill from here in batches. Like the kernel's
/// per-node vmstat, it is also where its CPUs' progress is summed and where its CPUs' and VMAs' counters are merged
/// at the end of a run, so the machine reads tens of nodes instead of thousands of grains.
/// </summary>
[NumaPlacement]
public sealed class NumaNodeGrain(RunCatalog runs) : Grain, INumaNodeGrain
{
    private NumaNode _node = null!;
    private long _total;
    /// <summary>A CPU allocated or freed here: this activation holds the run's free list (else it is a fresh one).</summary>
    private bool _used;
    private string _run = "";
    private RunDescription _description = null!;
    /// <summary>Each CPU's latest report: ops begun, fault entries, clock, and whether its task ended.</summary>
    private readonly Dictionary<int, (long Ops, long Faults, long Clock, bool Done)> _progress = new();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        string key = this.GetPrimaryKeyString();
        _description = await runs.Get(GrainFactory, GrainKeys.RunOf(key)); // held: the catalog holds runs weakly
        MachineSpec spec = _description.Spec;
        _run = GrainKeys.RunOf(key);
        int id = int.Parse(key[(key.LastIndexOf("/node", StringComparison.Ordinal) + 5)..], System.Globalization.CultureInfo.InvariantCulture);
        _node = new NumaNode(id, id * spec.FramesPerNode, spec.FramesPerNode);
        _total = spec.FramesPerNode;
    }

    public Task<FrameBatch> AllocBulk(int max)
    {
        _used = true;
        var frames = new long[max];
        int n = _node.AllocBulk(frames, 0, max);
        return Task.FromResult(new FrameBatch { Frames = n == max ? frames : frames[..n], FreeAfter = _node.FreeFrames });
    }

    public Task Free(long[] frames)
    {
        _used = true;
        foreach (long f in frames)
        {
            if ((f & NumaNode.HugeFreeTag) != 0) _node.FreeHuge(f & ~NumaNode.HugeFreeTag);
            else _node.Free(f);
        }
        return Task.CompletedTask;
    }

    public Task<long> AllocHuge()
    {
        _used = true;
        return Task.FromResult(_node.AllocHuge());
    }

    public Task Progress(int cpu, long ops, long faults, long clock, bool done)
    {
        _progress[cpu] = (ops, faults, clock, done);
        return Task.CompletedTask;
    }

    public Task<NodeProgress> GetProgress(bool detail)
    {
        var p = new NodeProgress();
        foreach (var (ops, faults, clock, _) in _progress.Values)
        {
            p.Ops += ops;
            p.Faults += faults;
            p.MaxClock = Math.Max(p.MaxClock, clock);
        }
        if (detail)
            p.Running = _progress.Where(kv => !kv.Value.Done).Select(kv => new CpuProgress(kv.Key, kv.Value.Ops, kv.Value.Faults, kv.Value.Clock)).ToList();
        return Task.FromResult(p);
    }

    public async Task<StatsMessage> Collect(int[] cpus, int mmId, int[] vmaIds)
    {
        var all = await GetStats();
        // Each grain's share merges into a message of its own, and those merge in a fixed order (CPUs, then VMAs by id),
        // so the result does not depend on which grain answered first.
        var cpuParts = cpus.Select(_ => new StatsMessage()).ToArray();
        var vmaParts = vmaIds.Select(_ => new StatsMessage()).ToArray();
        await Fanout.ForEach(Enumerable.Range(0, cpus.Length).ToArray(), i => StatsCodec.MergeOrLost(cpuParts[i], $"cpu{cpus[i]}",
            () => GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(_run, _node.Id, cpus[i])).GetStats()));
        await Fanout.ForEach(Enumerable.Range(0, vmaIds.Length).ToArray(), i => StatsCodec.MergeOrLost(vmaParts[i], $"vma{vmaIds[i]}",
            () => GrainFactory.GetGrain<IVmaGrain>(GrainKeys.Vma(_run, mmId, _node.Id, vmaIds[i])).GetStats()));
        foreach (var part in cpuParts.Concat(vmaParts)) StatsCodec.Merge(all, part);
        return all;
    }

    /// <summary>
    /// The node's share of bringing up the machine's CPUs (the kernel's bringup_nonboot_cpus, which since 6.5 can bring
    /// CPUs up in parallel): the machine asks each node, and each node starts its own CPUs' grains, on its own silo.
    /// </summary>
    public Task StartCpus(int[] tasks, int[] cpus, bool attach)
    {
        return Fanout.ForEach(Enumerable.Range(0, tasks.Length).ToArray(), i =>
        {
            var cpu = GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(_run, _node.Id, cpus[i]));
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
