using DistEmu.Abstractions;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// The mm grain's way to its VMAs: the kernel's writer sequences run in the mm grain on VMA shadows (bounds, flags,
/// vm_lock_seq, detached), and every step that touches a VMA's own lock or entries is a call to its grain.
/// </summary>
public sealed class GrainVmaOps : IVmaOps
{
    private readonly IGrainFactory _grains;
    private readonly string _run;
    private readonly HashSet<int> _writeLockedThisEpoch = new();

    public GrainVmaOps(IGrainFactory grains, string run)
    {
        _grains = grains;
        _run = run;
    }

    /// <summary>Every VMA grain this mm created (for collecting statistics at the end).</summary>
    public HashSet<int> Known { get; } = new();

    /// <summary>The emulated node of each VMA's grain: that of the CPU whose task created it (a split-off half keeps the original's).</summary>
    private readonly Dictionary<int, int> _nodes = new();

    /// <summary>The node in the key of VMA <paramref name="vmaId"/>'s grain (0 for one this mm never created).</summary>
    public int NodeOf(int vmaId) => _nodes.GetValueOrDefault(vmaId);

    public IVmaGrain Grain(int mmId, int vmaId) => _grains.GetGrain<IVmaGrain>(GrainKeys.Vma(_run, mmId, NodeOf(vmaId), vmaId));

    private IVmaGrain G(Vma v) => Grain(v.Mm.Id, v.Id);

    private static long Settle(EmuTask t, ClockReply r)
    {
        t.ReturnedAt(r.Clock);
        return r.Value;
    }

    public static VmaInit Describe(Vma v) => new()
    {
        MmId = v.Mm.Id,
        VmaId = v.Id,
        Start = v.Start,
        End = v.End,
        Flags = (byte)v.Flags,
        FileId = v.File?.Id ?? -1,
        FileName = v.File?.Name,
        FileDiskBacked = v.File?.DiskBacked ?? false,
        PgOff = v.PgOff,
        HasAnonVma = v.HasAnonVma,
        VmLockSeq = v.VmLockSeq,
        MmLockSeq = v.Mm.MmLockSeq,
    };

    public async ValueTask Created(EmuTask t, Vma vma)
    {
        Known.Add(vma.Id);
        _nodes[vma.Id] = Math.Max(0, t.Node);
        _writeLockedThisEpoch.Add(vma.Id);
        var init = Describe(vma);
        init.Node = NodeOf(vma.Id);
        await G(vma).Init(init);
    }

    public async ValueTask<long> StartWrite(EmuTask t, Vma vma)
    {
        var mm = vma.Mm;
        if (vma.VmLockSeq == mm.MmLockSeq)
            return 0;
        long waited = Settle(t, await G(vma).StartWrite(KernelHost.CallerOf(t), mm.MmLockSeq));
        vma.VmLockSeq = mm.MmLockSeq;
        _writeLockedThisEpoch.Add(vma.Id);
        return waited;
    }

    public async ValueTask MarkDetached(EmuTask t, Vma vma)
    {
        VmaLock.VmaMarkDetached(t, vma);
        await G(vma).MarkDetached(KernelHost.CallerOf(t));
    }

    public async ValueTask SplitOff(EmuTask t, Vma vma, Vma nv)
    {
        Known.Add(nv.Id);
        _nodes[nv.Id] = NodeOf(vma.Id);
        _writeLockedThisEpoch.Add(nv.Id);
        var init = Describe(nv);
        init.Node = NodeOf(vma.Id);
        Settle(t, await G(vma).SplitOff(KernelHost.CallerOf(t), vma.Start, vma.End, vma.PgOff, init));
    }

    public async ValueTask<long> Unmap(EmuTask t, Vma vma) => Settle(t, await G(vma).Unmap(KernelHost.CallerOf(t), CpuMask(vma)));

    /// <summary>The mm's cpumask as this mm grain has it: the VMA grain's shootdowns reach every CPU of the mm, as the kernel's do.</summary>
    private static int[] CpuMask(Vma vma) => vma.Mm.CpuMask().ToArray();

    /// <summary>Each VMA grain owns the page-table pages of its own range and freed them in <see cref="Unmap"/>.</summary>
    public void FreePgTables(EmuTask t, MmStruct mm, long start, long end)
    {
    }

    public async ValueTask ChangeProtection(EmuTask t, Vma vma, bool writable, bool accessible) =>
        Settle(t, await G(vma).ChangeProtection(KernelHost.CallerOf(t), (byte)vma.Flags, writable, accessible, CpuMask(vma)));

    public void EpochEnded(EmuTask t, MmStruct mm, long newSeq)
    {
        foreach (int id in _writeLockedThisEpoch)
            _ = Grain(mm.Id, id).EpochEnded(newSeq);
        _writeLockedThisEpoch.Clear();
    }

    public async ValueTask<long> ChangeProtNuma(EmuTask t, Vma vma, long from, long to) =>
        Settle(t, await G(vma).ChangeProtNuma(KernelHost.CallerOf(t), from, to, CpuMask(vma)));

    public async ValueTask<int> PageOut(EmuTask t, Vma vma, long from, long to) =>
        (int)Settle(t, await G(vma).PageOut(KernelHost.CallerOf(t), from, to, CpuMask(vma)));

    public async ValueTask<IReadOnlyList<(long Addr, long Frame)>> CollectForMigration(EmuTask t, Vma vma, long from, long to, int node)
    {
        var r = await G(vma).CollectForMigration(KernelHost.CallerOf(t), from, to, node);
        t.ReturnedAt(r.Clock);
        return r.Addrs.Zip(r.Frames).ToList();
    }

    /// <summary>Queued at the destination node's migrator, which runs migrate_pages on the VMA's grain.</summary>
    public async ValueTask<int> Migrate(EmuTask t, Vma vma, IReadOnlyList<(long Addr, long Frame)> pages, int node) =>
        (int)Settle(t, await _grains.GetGrain<IPageMigratorGrain>(GrainKeys.Migrator(_run, node))
            .Migrate(KernelHost.CallerOf(t), vma.Mm.Id, NodeOf(vma.Id), vma.Id, pages.Select(p => p.Addr).ToArray(), pages.Select(p => p.Frame).ToArray(), CpuMask(vma)));
}
