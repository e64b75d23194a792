using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sched;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// A VMA: vm_area_struct with its vm_lock, the entries of its range (its own page-table pages) and their folios.
/// Every method runs kernel-core functions on local objects; a local copy of its mm carries mm_lock_seq as the mm
/// grain last told it, and a token of mmap_lock held for the length of a call on behalf of a caller that holds the
/// real one. Reentrant: a fault sleeping on a migration entry (a parked turn) lets the migrator's calls in.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class VmaGrain(RunCatalog runs) : Grain, IVmaGrain
{
    private KernelHost _host = null!;
    private MmStruct _mm = null!;
    private Vma? _vma;
    private FileObject? _file;
    /// <summary>Unmapped: nothing attaches to this VMA again, so its grain may go once idle (see <see cref="OnDeactivateAsync"/>).</summary>
    private bool _unmapped;
    /// <summary>The mm has read its counters (the results are being collected): it hands nothing over when it goes.</summary>
    private bool _collected;

    public Task<string> Where() => Task.FromResult(GrainContext.Address.SiloAddress?.ToParsableString() ?? "");

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(RunLifetime.Hold);
        _host = await KernelHost.For(runs, GrainFactory, this.GetPrimaryKeyString());
    }

    /// <summary>
    /// An unmapped VMA's grain is held no longer than Orleans' idle collection age; as it goes, it hands its spans to the
    /// run's collector and its counters to its mm, which keeps them for the results. Best effort: a grain deactivated
    /// because its silo is shutting down or lost cannot always reach the mm.
    /// </summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_vma is null || !_unmapped || _collected) return;
        _collected = true;
        await _host.DrainSpans(); // most went at munmap; a stale caller's fault may have recorded more since
        var msg = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(msg);
        try
        {
            await GrainFactory.GetGrain<IMmGrain>(GrainKeys.Mm(_host.Config.RunId, _mm.Id)).Retired(_vma.Id, msg).WaitAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The mm will find this grain fresh, and name its counters as lost.
        }
    }

    private Vma V => _vma ?? throw new InvalidOperationException($"{this.GetPrimaryKeyString()} was never initialised");

    public Task Init(VmaInit init)
    {
        var m = _host.Machine;
        _mm = new MmStruct(m, init.MmId, tokenLock: true) { MmLockSeq = init.MmLockSeq };
        if (init.FileId >= 0)
            _file = new FileObject(init.FileId, init.FileName ?? $"file{init.FileId}", init.FileDiskBacked);
        _vma = new Vma(m, init.VmaId, _mm, init.Start, init.End, (VmFlags)init.Flags, _file, init.PgOff)
        {
            HasAnonVma = init.HasAnonVma,
            VmLockSeq = init.VmLockSeq,
        };
        var pt = _mm.PageTable;
        for (int i = 0; i + 1 < init.Entries.Length; i += 2)
        {
            long addr = init.Entries[i], pte = init.Entries[i + 1];
            var page = pt.GetOrAlloc(addr);
            pt.Set(page, pt.IndexOf(addr), pte);
            if (OwnsFrame(pte)) m.Frames.Anon++;
        }
        foreach (int cpu in init.Cpus) _mm.MarkCpu(cpu);
        return Task.CompletedTask;
    }

    /// <summary>An entry that holds an anonymous frame of its own (counted in frame accounting where it lives).</summary>
    private static bool OwnsFrame(long pte) =>
        Pte.Kind(pte) is PteKind.Present or PteKind.ProtNone or PteKind.Migration && !Pte.IsFile(pte) && Pte.Frame(pte) != Pte.ZeroFrame;

    private EmuTask Enter(FaultRequest r)
    {
        var t = _host.Task(r.Caller);
        // vma_start_read compares with mm_lock_seq: at least what the caller's tree showed (EpochEnded may still be on its way).
        if (_vma is not null && r.MmLockSeq > _mm.MmLockSeq) _mm.MmLockSeq = r.MmLockSeq;
        if (r.Frame >= 0) t.Pcp.Load(_host.Machine, [r.Frame], r.RefillNs);
        return t;
    }

    /// <summary>
    /// End a fault-path call: the clock, the caller's frame back if unused (frames a fault refilled from the node
    /// stay on this CPU's list here, for its next fault on this VMA), buffered frees sent.
    /// </summary>
    private async Task<FaultReply> Leave(EmuTask t, FaultReply reply, long addr)
    {
        reply.Clock = t.Clock;
        reply.Violation = t.ViolationNote;
        t.ViolationNote = null;
        reply.UnusedFrame = t.Pcp.TakeOne(_host.Machine, out reply.UnusedRefillNs);
        if (reply.Attempted && reply.Lock == (byte)VmaLockResult.Locked)
            reply.Pte = _mm.PageTable.Read(addr);
        await _host.Frames.Flush();
        await _host.FlushSpans();
        return reply;
    }

    private static FaultReply NewReply() => new() { MmapReleasedAt = -1, UnusedFrame = -1 };

    public async ValueTask<FaultReply> WalkOrFault(FaultRequest request)
    {
        var t = Enter(request);
        var reply = NewReply();
        var flags = (FaultFlags)request.Flags;
        // A stale snapshot found a VMA that munmap detached since: the fault's lock_vma_under_rcu meets it as the
        // kernel's does (vma_lock_miss, then look up again), as under sim; a walk that is not a fault just looks again.
        if (_vma is not null && V.Detached && request.SpeculateFault)
        {
            await t.Delay(_host.Machine.Cost.FaultEntryNs + _host.Machine.Cost.VmaLookupNs);
            Attempt(ref reply, await VmaFault.AttemptUnderVmaLock(t, V, request.Addr, flags));
            return await Leave(t, reply, request.Addr);
        }
        // A fresh activation: a VMA unmapped long ago (retired), seen through a stale snapshot; look again.
        if (_vma is null || !V.Contains(request.Addr) || V.Detached)
        {
            reply.Stale = true;
            return await Leave(t, reply, request.Addr);
        }
        long pte = _mm.PageTable.Read(request.Addr);
        bool usable = Pte.Kind(pte) == PteKind.Present && (!flags.HasFlag(FaultFlags.Write) || Pte.IsWritable(pte));
        reply.Pte = pte;
        if (usable)
        {
            _mm.MarkCpu(t.Cpu);
        }
        else if (request.SpeculateFault)
        {
            // The fault that follows on the CPU: exception entry and the RCU lookup, then the VMA attempt, here.
            await t.Delay(_host.Machine.Cost.FaultEntryNs + _host.Machine.Cost.VmaLookupNs);
            Attempt(ref reply, await VmaFault.AttemptUnderVmaLock(t, V, request.Addr, flags));
            _mm.MarkCpu(t.Cpu);
        }
        return await Leave(t, reply, request.Addr);
    }

    private static void Attempt(ref FaultReply reply, (VmaLockResult Lock, VmFault Fault) r)
    {
        reply.Attempted = true;
        reply.Lock = (byte)r.Lock;
        reply.Fault = (int)r.Fault;
    }

    public async ValueTask<FaultReply> FaultUnderVmaLock(FaultRequest request)
    {
        var t = Enter(request);
        var reply = NewReply();
        if (_vma is null)
        {
            // A fresh activation (a retired VMA, or one lost with its silo): vma_start_read fails, the mmap_lock path decides.
            Attempt(ref reply, (VmaLockResult.Abort, VmFault.Done));
            return await Leave(t, reply, request.Addr);
        }
        // Outside its bounds (not detached): the caller's snapshot predates a split. Detached goes to the kernel's MISS.
        if (!V.Contains(request.Addr) && !V.Detached)
        {
            reply.Stale = true;
            return await Leave(t, reply, request.Addr);
        }
        Attempt(ref reply, await VmaFault.AttemptUnderVmaLock(t, V, request.Addr, (FaultFlags)request.Flags));
        _mm.MarkCpu(t.Cpu);
        return await Leave(t, reply, request.Addr);
    }

    public async ValueTask<FaultReply> HandleUnderMmap(FaultRequest request)
    {
        var t = Enter(request);
        TakeToken(t, LockMode.Read);
        var (accessError, fault) = await VmaFault.HandleUnderMmapLock(t, V, request.Addr, (FaultFlags)request.Flags);
        var reply = NewReply();
        reply.AccessError = accessError;
        reply.Fault = (int)fault;
        if (accessError || fault.Has(VmFault.Retry | VmFault.Completed))
            reply.MmapReleasedAt = _mm.MmapLock.LastReleasedAt;
        else
            _mm.MmapLock.Release(t, LockMode.Read);
        _mm.MarkCpu(t.Cpu);
        reply = await Leave(t, reply, request.Addr);
        if (!accessError) reply.Pte = _mm.PageTable.Read(request.Addr);
        return reply;
    }

    /// <summary>Stand for the caller's hold of the real mmap_lock (in the mm grain) for the length of this call.</summary>
    private void TakeToken(EmuTask t, LockMode mode)
    {
        bool ok = mode == LockMode.Read ? _mm.MmapLock.TryRead(t) : _mm.MmapLock.TryWrite(t);
        if (!ok)
            _host.Machine.Sanitizer.Report("S1", t, V, V.Start, $"mmap_lock {mode.Name()} held by the caller, but another caller's conflicting hold is still in {V}");
    }

    private void DropToken(EmuTask t, LockMode mode)
    {
        if (t.Holds(_mm.MmapLock)) _mm.MmapLock.Release(t, mode);
    }

    private async Task<ClockReply> Done(EmuTask t, long value = 0)
    {
        await _host.Frames.Flush();
        await _host.FlushSpans();
        return new ClockReply { Clock = t.Clock, Value = value };
    }

    public async Task<ClockReply> StartWrite(Caller caller, long mmLockSeq)
    {
        var t = _host.Task(caller);
        if (mmLockSeq > _mm.MmLockSeq) _mm.MmLockSeq = mmLockSeq;
        TakeToken(t, LockMode.Write);
        long waited = await VmaLock.VmaStartWrite(t, V);
        DropToken(t, LockMode.Write);
        return await Done(t, waited);
    }

    public Task MarkDetached(Caller caller)
    {
        var t = _host.Task(caller);
        TakeToken(t, LockMode.Write);
        VmaLock.VmaMarkDetached(t, V);
        DropToken(t, LockMode.Write);
        return Task.CompletedTask;
    }

    public async Task<ClockReply> SplitOff(Caller caller, long start, long end, long pgoff, VmaInit newVma)
    {
        var t = _host.Task(caller);
        var m = _host.Machine;
        TakeToken(t, LockMode.Write);
        m.Sanitizer.CheckVmaChange(t, V, "__split_vma");
        // The entries of the other half move to its grain (here each VMA owns the page-table pages of its range).
        // A migration in flight keeps its folio state in this grain, so wait for those to finish first (the kernel
        // leaves the entries in place and needs no wait: a deviation of this engine, confined to splits).
        var pt = _mm.PageTable;
        // vma_adjust_trans_huge: a THP across the new boundary is split. One wholly in the other half is split too
        // (a deviation of this engine: the large folio's state does not move between grains, so it arrives PTE-mapped).
        await HugeMemory.VmaAdjustTransHuge(t, V, newVma.Start == end ? end : start);
        while (FirstMigrationEntry(pt, newVma.Start, newVma.End) is long frame)
            await MmFault.WaitFolioUnlocked(t, frame);
        foreach (var page in pt.PagesIn(newVma.Start, newVma.End))
        {
            if (!page.IsHuge) continue;
            await page.Ptl.AcquireWrite(t);
            await t.Delay(HugeMemory.SplitHugePmdLocked(t, V, page));
            page.Ptl.Release(t, LockMode.Write);
        }
        var moved = new List<long>();
        foreach (var page in pt.PagesIn(newVma.Start, newVma.End))
        {
            var (ps, pe) = pt.RangeOf(page);
            for (long a = Math.Max(ps, newVma.Start); a < Math.Min(pe, newVma.End); a += m.Spec.PageSize)
            {
                int i = pt.IndexOf(a);
                long pte = page[i];
                if (pte == Pte.None) continue;
                moved.Add(a);
                moved.Add(pte);
                pt.Set(page, i, Pte.None);
                if (OwnsFrame(pte)) m.Frames.Anon--;
            }
        }
        newVma.Entries = moved.ToArray();
        newVma.Cpus = _mm.CpuMask().ToArray();
        V.Start = start;
        V.End = end;
        V.PgOff = pgoff;
        DropToken(t, LockMode.Write);
        await GrainFactory.GetGrain<IVmaGrain>(GrainKeys.Vma(_host.Config.RunId, newVma.MmId, newVma.Node, newVma.VmaId)).Init(newVma);
        return await Done(t);
    }

    private long? FirstMigrationEntry(PageTable pt, long start, long end)
    {
        long pageSize = _host.Machine.Spec.PageSize;
        foreach (var page in pt.PagesIn(start, end))
        {
            var (ps, pe) = pt.RangeOf(page);
            for (long a = Math.Max(ps, start); a < Math.Min(pe, end); a += pageSize)
            {
                long pte = page[pt.IndexOf(a)];
                if (Pte.Kind(pte) == PteKind.Migration) return Pte.Frame(pte);
            }
        }
        return null;
    }

    /// <summary>A writer path's task, with the mm's cpumask joined to this grain's copy first (its shootdowns read it).</summary>
    private EmuTask Writer(Caller caller, int[] mmCpus)
    {
        foreach (int cpu in mmCpus) _mm.MarkCpu(cpu);
        return _host.Task(caller);
    }

    public async Task<ClockReply> Unmap(Caller caller, int[] mmCpus)
    {
        var t = Writer(caller, mmCpus);
        var m = _host.Machine;
        TakeToken(t, LockMode.Read);
        long zapped = await LocalVmaOps.Instance.Unmap(t, V);
        DropToken(t, LockMode.Read);
        _unmapped = true;
        DelayDeactivation(RunLifetime.Release);
        _mm.PageTable.FreeUnused(V.Start, V.End, VmaTree.Empty);
        if (_file != null)
        {
            // The page cache lives with the VMA that mapped the file under this engine: it goes with the mapping.
            foreach (long frame in _file.Pages.Values)
            {
                m.Frames.PageCache--;
                m.FreeFrame(frame);
            }
            _file.Pages.Clear();
        }
        // Nothing is recorded here after munmap: what was goes now, so an unmapped VMA's grain holds no spans.
        await _host.DrainSpans();
        return await Done(t, zapped);
    }

    public async Task<ClockReply> ChangeProtection(Caller caller, byte flags, bool writable, bool accessible, int[] mmCpus)
    {
        var t = Writer(caller, mmCpus);
        TakeToken(t, LockMode.Write);
        _host.Machine.Sanitizer.CheckVmaChange(t, V, "mprotect_fixup");
        V.Flags = (VmFlags)flags;
        await LocalVmaOps.Instance.ChangeProtection(t, V, writable, accessible);
        DropToken(t, LockMode.Write);
        return await Done(t);
    }

    public Task EpochEnded(long mmLockSeq)
    {
        if (mmLockSeq > _mm.MmLockSeq) _mm.MmLockSeq = mmLockSeq;
        return Task.CompletedTask;
    }

    public async Task<ClockReply> ChangeProtNuma(Caller caller, long from, long to, int[] mmCpus)
    {
        var t = Writer(caller, mmCpus);
        TakeToken(t, LockMode.Read);
        long n = await LocalVmaOps.Instance.ChangeProtNuma(t, V, from, to);
        DropToken(t, LockMode.Read);
        return await Done(t, n);
    }

    public async Task<ClockReply> PageOut(Caller caller, long from, long to, int[] mmCpus)
    {
        var t = Writer(caller, mmCpus);
        TakeToken(t, LockMode.Read);
        int n = await LocalVmaOps.Instance.PageOut(t, V, from, to);
        DropToken(t, LockMode.Read);
        return await Done(t, n);
    }

    public async Task<CollectReply> CollectForMigration(Caller caller, long from, long to, int node)
    {
        var t = _host.Task(caller);
        TakeToken(t, LockMode.Read);
        var pages = await MovePages.Collect(t, V, from, to, node);
        DropToken(t, LockMode.Read);
        await _host.FlushSpans();
        return new CollectReply { Clock = t.Clock, Addrs = pages.Select(p => p.Addr).ToArray(), Frames = pages.Select(p => p.Frame).ToArray() };
    }

    public async Task<ClockReply> Migrate(Caller caller, long[] addrs, long[] frames, int node, int[] mmCpus)
    {
        var t = Writer(caller, mmCpus);
        int moved = await LocalVmaOps.Instance.Migrate(t, V, addrs.Zip(frames).ToList(), node);
        t.Pcp.Drain(_host.Machine);
        return await Done(t, moved);
    }

    public async Task<StatsMessage> GetStats()
    {
        DelayDeactivation(RunLifetime.Release);
        _collected = true; // read by the mm: no hand-over when it goes
        // Only VMAs the mm created and initialised are asked: without its VMA, this is a fresh activation. Whether the one
        // before it retired (its counters are with the mm) or went with its silo, only the mm can tell.
        if (_vma is null)
        {
            string key = this.GetPrimaryKeyString();
            return new StatsMessage { FreshVmas = [int.Parse(key.AsSpan(key.LastIndexOf("/vma", StringComparison.Ordinal) + 4), System.Globalization.CultureInfo.InvariantCulture)] };
        }
        await _host.DrainSpans();
        var msg = StatsCodec.Export(_host.Machine);
        _host.ExportSpans(msg);
        return msg;
    }
}
