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
        var tree = _mm.Tree;
        var vmas = tree.Vmas;
        return Task.FromResult(new TreeSnapshot
        {
            Version = tree.Version,
            MmLockSeq = _mm.MmLockSeq,
            Starts = vmas.Select(v => v.Start).ToArray(),
            Ends = vmas.Select(v => v.End).ToArray(),
            VmaIds = vmas.Select(v => v.Id).ToArray(),
            Nodes = vmas.Select(v => _ops.NodeOf(v.Id)).ToArray(),
            Files = vmas.Select(v => v.File?.Id ?? ((v.Flags & Kernel.Mm.VmFlags.Shared) != 0 ? -2 : -1)).ToArray(),
        });
    }

    public Task MarkCpu(int cpu)
    {
        _mm.MarkCpu(cpu);
        return Task.CompletedTask;
    }

    public async Task<LockFindReply> LockAndFind(Caller caller, long addr)
    {
        _used = true;
        var t = _host.Task(caller);
        var vma = await VmaLookup.LockMmAndFindVma(t, _mm, addr);
        await _host.FlushSpans();
        return new LockFindReply { Found = vma != null, VmaId = vma?.Id ?? -1, VmaNode = vma is null ? 0 : _ops.NodeOf(vma.Id), Clock = t.Clock };
    }

    public Task ReadUnlock(Caller caller)
    {
        var t = _host.Task(caller);
        MmapLock.MmapReadUnlock(t, _mm);
        return _host.FlushSpans();
    }

    public async Task<long> Syscall(Caller caller, OpMessage op)
    {
        _used = true;
        var t = _host.Task(caller);
        await OpExecutor.ExecuteSyscall(t, _mm, OpMessages.To(op), _files, op.PgOff);
        t.Pcp.Drain(_host.Machine);
        await _host.Frames.Flush();
        await _host.FlushSpans();
        return t.Clock;
    }

    public Task Retired(int vmaId, StatsMessage stats)
    {
        // Only once, and only for a VMA not read already: its counters must count exactly once.
        if (_ops.Known.Remove(vmaId))
            StatsCodec.Merge(_retired, stats);
        return Task.CompletedTask;
    }

    public Task<Dictionary<int, int[]>> VmasByNode() =>
        Task.FromResult(_ops.Known.GroupBy(_ops.NodeOf).ToDictionary(g => g.Key, g => g.OrderBy(id => id).ToArray()));

    public async Task<StatsMessage> CollectStats(int[] freshVmas)
    {
        DelayDeactivation(RunLifetime.Release);
        await _host.DrainSpans();
        var all = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(all);
        if (!_used) all.Fresh.Add($"mm{_mm.Id}");
        // A VMA grain that answered fresh and is still known here did not retire: its counters went with its silo.
        foreach (int id in freshVmas)
            if (_ops.Known.Contains(id))
                all.Lost.Add($"vma{id} (its state was lost with its silo)");
        // No VMA is counted twice: one that answered a node set itself collected and hands nothing over when it goes.
        StatsCodec.Merge(all, _retired); // last: `all` may take its entries by reference, and nothing merges into them after
        return all;
    }
}
