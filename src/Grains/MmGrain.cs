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
public sealed class MmGrain : Grain, IMmGrain
{
    private KernelHost _host = null!;
    private MmStruct _mm = null!;
    private GrainVmaOps _ops = null!;
    private List<FileObject> _files = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        string key = this.GetPrimaryKeyString();
        _host = await KernelHost.For(GrainFactory, key);
        int id = int.Parse(key[(key.LastIndexOf("/mm", StringComparison.Ordinal) + 3)..], System.Globalization.CultureInfo.InvariantCulture);
        _ops = new GrainVmaOps(GrainFactory, _host.Config.RunId);
        _mm = new MmStruct(_host.Machine, id) { VmaOps = _ops };
        var cfg = _host.Config;
        var workload = Workloads.Create(cfg.Workload, cfg.Params);
        var ctx = new WorkloadContext(_host.Spec, cfg.Tasks, cfg.Seed);
        _files = workload.Files(ctx).Select(f => _host.Machine.CreateFile(f.Name, f.DiskBacked)).ToList();
    }

    public Task<TreeSnapshot> GetTree(int cpu)
    {
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
        var t = _host.Task(caller);
        await OpExecutor.ExecuteSyscall(t, _mm, OpMessages.To(op), _files);
        t.Pcp.Drain(_host.Machine);
        await _host.Frames.Flush();
        return t.Clock;
    }

    public async Task<StatsMessage> CollectStats()
    {
        var all = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(all);
        foreach (int id in _ops.Known)
        {
            var s = await _ops.Grain(_mm.Id, id).GetStats();
            StatsCodec.Merge(all, s);
        }
        return all;
    }
}
