using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Workloads;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// An address space: mmap_lock, mm_lock_seq and the VMA tree (of VMA shadows), and the system calls, which run the
/// kernel core's writer sequences here with each VMA's own state reached through its grain. Reentrant: a caller
/// waiting for mmap_lock is a parked turn, so the holder's unlock can come in.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class MmGrain(RunCatalog runs) : Grain, IMmGrain
{
    private KernelHost _host = null!;
    private MmStruct _mm = null!;
    private GrainVmaOps _ops = null!;
    private List<FileObject> _files = null!;
    /// <summary>A CPU called in: this activation holds the run's address space (else it is a fresh one).</summary>
    private bool _used;
    /// <summary>The counters of the VMA grains that handed them over as they were deactivated (<see cref="Retired"/>).</summary>
    private readonly StatsMessage _retired = new();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        string key = this.GetPrimaryKeyString();
        _host = await KernelHost.For(runs, GrainFactory, key);
        int id = int.Parse(key[(key.LastIndexOf("/mm", StringComparison.Ordinal) + 3)..], System.Globalization.CultureInfo.InvariantCulture);
        _ops = new GrainVmaOps(GrainFactory, _host.Config.RunId);
        _mm = new MmStruct(_host.Machine, id) { VmaOps = _ops };
        var cfg = _host.Config;
        if (cfg.FedFiles is { } names)
        {
            // A replayed trace's file mappings: page-cache files that are not disk-backed, as under the sim engine.
            _files = names.Select(n => _host.Machine.CreateFile(n, diskBacked: false)).ToList();
            return;
        }
        var workload = Workloads.Create(cfg.Workload, cfg.Params);
        var ctx = new WorkloadContext(_host.Spec, cfg.Tasks, cfg.Seed);
        _files = workload.Files(ctx).Select(f => _host.Machine.CreateFile(f.Name, f.DiskBacked)).ToList();
    }

    public Task<TreeSnapshot> GetTree(int cpu)
    {
        _used = true;
        _mm.MarkCpu(cpu);
        var tree = _mm.Tree;
        var vmas = tree.Vmas;
        return Task.FromResult(new TreeSnapshot
        {
            Version = tree.Version,
            Starts = vmas.Select(v => v.Start).ToArray(),
            Ends = vmas.Select(v => v.End).ToArray(),
            VmaIds = vmas.Select(v => v.Id).ToArray(),
            Nodes = vmas.Select(v => _ops.NodeOf(v.Id)).ToArray(),
        });
    }

    public async Task<LockFindReply> LockAndFind(Caller caller, long addr)
    {
        _used = true;
        var t = _host.Task(caller);
        var vma = await VmaLookup.LockMmAndFindVma(t, _mm, addr);
        return new LockFindReply { Found = vma != null, VmaId = vma?.Id ?? -1, VmaNode = vma is null ? 0 : _ops.NodeOf(vma.Id), Clock = t.Clock };
    }

    public Task ReadUnlock(Caller caller)
    {
        var t = _host.Task(caller);
        MmapLock.MmapReadUnlock(t, _mm);
        return Task.CompletedTask;
    }

    public async Task<long> Syscall(Caller caller, OpMessage op)
    {
        _used = true;
        var t = _host.Task(caller);
        await OpExecutor.ExecuteSyscall(t, _mm, OpMessages.To(op), _files, op.PgOff);
        t.Pcp.Drain(_host.Machine);
        await _host.Frames.Flush();
        return t.Clock;
    }

    public Task Retired(int vmaId, StatsMessage stats)
    {
        // Only once, and only for a VMA not read already: its counters must count exactly once.
        if (_ops.Known.Remove(vmaId))
            StatsCodec.Merge(_retired, stats);
        return Task.CompletedTask;
    }

    /// <summary>How long one VMA grain may take to give its counters before it counts as lost (below the machine's bound for the mm).</summary>
    public static readonly TimeSpan CollectBound = TimeSpan.FromSeconds(2.5);

    /// <summary>The mm's counters and every VMA grain's, asked at once; a VMA that does not answer (lost silo) is listed in Lost.</summary>
    public async Task<StatsMessage> CollectStats()
    {
        DelayDeactivation(RunLifetime.Release);
        var parts = _ops.Known.Select(id =>
        {
            var into = new StatsMessage();
            return (Id: id, Into: into, Read: StatsCodec.MergeSurviving(into, $"vma{id}", () => _ops.Grain(_mm.Id, id).GetStats(), CollectBound));
        }).ToList();
        await Task.WhenAll(parts.Select(p => p.Read));
        var all = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(all);
        if (!_used) all.Fresh.Add($"mm{_mm.Id}");
        // A VMA that retired while its grain was being asked answered from a fresh activation: its counters are in _retired.
        foreach (var (id, into, _) in parts)
            if (_ops.Known.Contains(id))
                StatsCodec.Merge(all, into);
        StatsCodec.Merge(all, _retired); // last: `all` may take its entries by reference, and nothing merges into them after
        return all;
    }
}
