using System.Runtime.CompilerServices;
using DistEmu.Abstractions;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// A CPU grain's way to its address space. The RCU lookup reads the CPU's own snapshot of the VMA tree (refreshed
/// from the mm grain when it finds nothing or is told it is stale; a detached VMA is a vma_lock_miss). A TLB miss is
/// one call to the VMA grain, which on an unusable entry goes straight on with the VMA-lock attempt in that same call
/// and returns the entry it installed, so the re-executed access needs no second walk: a fault on the fast path
/// costs one message. The mmap_lock path calls the mm grain.
/// </summary>
public sealed class GrainAddressSpace : IAddressSpacePort
{
    private readonly IGrainFactory _grains;
    private readonly string _run;
    private readonly int _mmId;
    private readonly IMmGrain _mm;
    private readonly Dictionary<int, IVmaGrain> _vmas = new();
    private TreeSnapshot _tree = new() { Version = -1 };
    private (long Addr, bool Write, FaultReply Reply)? _pending;
    private (long Vpn, long Pte) _fresh = (-1, 0);
    /// <summary>This CPU is in the mm grain's mm_cpumask (told once, at its first present entry).</summary>
    private bool _inCpuMask;

    public GrainAddressSpace(IGrainFactory grains, string run, int mmId)
    {
        _grains = grains;
        _run = run;
        _mmId = mmId;
        _mm = grains.GetGrain<IMmGrain>(GrainKeys.Mm(run, mmId));
    }

    /// <summary>VMA <paramref name="id"/>'s grain; its key carries the node <paramref name="node"/> of the CPU that created it.</summary>
    private IVmaGrain Vma(int id, int node)
    {
        if (!_vmas.TryGetValue(id, out var g))
            _vmas[id] = g = _grains.GetGrain<IVmaGrain>(GrainKeys.Vma(_run, _mmId, node, id));
        return g;
    }

    /// <summary>The grain of the VMA the snapshot has at <paramref name="addr"/>, or null.</summary>
    private IVmaGrain? Find(long addr)
    {
        int i = IndexOf(addr);
        return i < 0 ? null : Vma(_tree.VmaIds[i], i < _tree.Nodes.Length ? _tree.Nodes[i] : 0);
    }

    private int IndexOf(long addr)
    {
        var s = _tree.Starts;
        int lo = 0, hi = s.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (s[mid] <= addr)
            {
                if (addr < _tree.Ends[mid]) return mid;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return -1;
    }

    private async Task Refresh(EmuTask t) => _tree = await _mm.GetTree(t.Cpu);

    /// <summary>
    /// The claim of a run that touches [<paramref name="lo"/>, <paramref name="hi"/>], widened on this CPU's snapshot of
    /// the tree (<see cref="RunClaim.Widen"/>); the snapshot is refreshed first if it has no VMA at either end (a run
    /// that starts after the CPU's own mmap: the fault path would refresh it at the first access anyway).
    /// </summary>
    public async ValueTask<RunClaim> Claim(EmuTask t, long lo, long hi, long pmdSize)
    {
        if (lo <= hi && (IndexOf(lo) < 0 || IndexOf(hi) < 0)) await Refresh(t);
        var tree = _tree;
        var vmas = new List<RunClaim.VmaRange>();
        for (int i = 0; i < tree.Starts.Length; i++)
        {
            int file = i < tree.Files.Length ? tree.Files[i] : -1;
            vmas.Add(new RunClaim.VmaRange(tree.Starts[i], tree.Ends[i], Math.Max(-1, file), file == -2));
        }
        return RunClaim.Widen(lo, hi, pmdSize, vmas);
    }

    // The fault path's async methods here suspend at every grain call: pooled builders reuse their state-machine boxes
    // instead of allocating one per fault (each is awaited once, at once).
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FaultRequest> Request(EmuTask t, long addr, FaultFlags flags, bool speculate)
    {
        await t.Pcp.ReserveAhead(t.Machine, t, 1);
        long frame = t.Pcp.TakeOne(t.Machine, out long refillNs);
        return new FaultRequest
        {
            // A speculative walk runs the fault's VMA attempt before the fault begins here: it carries the fault's span ahead.
            Caller = KernelHost.CallerOf(t, faultAhead: speculate),
            Addr = addr,
            Flags = (int)flags,
            Frame = frame,
            RefillNs = refillNs,
            MmLockSeq = _tree.MmLockSeq,
            SpeculateFault = speculate,
        };
    }

    private static void Settle(EmuTask t, in FaultReply r)
    {
        t.ReturnedAt(r.Clock);
        if (r.UnusedFrame >= 0) t.Pcp.Load(t.Machine, [r.UnusedFrame], r.UnusedRefillNs);
        if (r.Violation != null) t.ViolationNote ??= r.Violation; // made in the VMA grain, for this fault's trace
    }

    /// <summary>A speculative attempt nobody consumed (the access gave up): take its frame back.</summary>
    public void DropPending(EmuTask t)
    {
        if (_pending is { } p) Settle(t, p.Reply);
        _pending = null;
    }

    /// <summary>
    /// The hardware walk. A CPU's first translation in the mm puts it in mm_cpumask, in the mm grain that every
    /// shootdown's mask comes from (as the sim engine's walk does, LocalAddressSpace.PageWalk): one call per CPU and mm.
    /// </summary>
    public ValueTask<long> PageWalk(EmuTask t, long addr, bool write) => _inCpuMask ? Walk(t, addr, write) : WalkAndJoinCpuMask(t, addr, write);

    private async ValueTask<long> WalkAndJoinCpuMask(EmuTask t, long addr, bool write)
    {
        long pte = await Walk(t, addr, write);
        if (!_inCpuMask && Pte.Kind(pte) == PteKind.Present)
        {
            _inCpuMask = true;
            await _mm.MarkCpu(t.Cpu);
        }
        return pte;
    }

    /// <summary>
    /// This CPU's own system call changed the tree (mmap, munmap, mprotect): its next lookup reads the new one, as an
    /// RCU reader after the writer's rcu_assign_pointer on the same CPU does — not the VMA it unmapped.
    /// </summary>
    public void TreeChanged() => _tree = new TreeSnapshot { Version = -1 };

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<long> Walk(EmuTask t, long addr, bool write)
    {
        DropPending(t);
        long vpn = addr >> t.Machine.Spec.PageShift;
        if (_fresh.Vpn == vpn)
        {
            // The entry this CPU's own fault just installed: what the hardware walk would find now.
            long pte = _fresh.Pte;
            _fresh = (-1, 0);
            if (Pte.Kind(pte) == PteKind.Present && (!write || Pte.IsWritable(pte)))
                return pte;
        }
        var flags = FaultFlags.AllowRetry | FaultFlags.Killable | FaultFlags.User | (write ? FaultFlags.Write : 0);
        FaultReply reply = default;
        for (int tries = 0; tries < 2; tries++)
        {
            var vma = Find(addr);
            if (vma is null)
            {
                await Refresh(t);
                vma = Find(addr);
                if (vma is null) return Pte.None;
            }
            var req = await Request(t, addr, flags, speculate: t.Machine.Policy.HasVmaPath());
            reply = await vma.WalkOrFault(req);
            if (!reply.Stale) break;
            Settle(t, reply);
            await Refresh(t);
        }
        if (reply.Stale)
            return Pte.None;
        if (reply.Attempted)
        {
            // The fault's VMA attempt already ran; the arch loop consumes it (and its frame) next.
            _pending = (addr, write, reply);
            return Pte.None;
        }
        Settle(t, reply);
        return reply.Pte;
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<VmaAttemptResult> VmaAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        int misses = 0;
        if (_pending is { } p && p.Addr == addr && p.Write == flags.HasFlag(FaultFlags.Write))
        {
            _pending = null;
            var (kind, done) = Interpret(t, addr, p.Reply, ref misses);
            if (done) return new VmaAttemptResult(kind, (VmFault)p.Reply.Fault, misses);
            await Refresh(t);
        }
        DropPending(t);
        while (true)
        {
            await t.Delay(t.Machine.Cost.VmaLookupNs);
            var vma = Find(addr);
            if (vma is null)
            {
                await Refresh(t);
                vma = Find(addr);
                if (vma is null) return new VmaAttemptResult(VmaAttemptKind.Abort, VmFault.Done, misses);
            }
            var req = await Request(t, addr, flags, speculate: false);
            var reply = await vma.FaultUnderVmaLock(req);
            if (reply.Stale)
            {
                Settle(t, reply);
                await Refresh(t);
                continue;
            }
            var (kind, done) = Interpret(t, addr, reply, ref misses);
            if (done) return new VmaAttemptResult(kind, (VmFault)reply.Fault, misses);
            await Refresh(t);
        }
    }

    /// <summary>Settle a VMA attempt's reply: true with its kind, or false after a MISS (look up again).</summary>
    private (VmaAttemptKind Kind, bool Done) Interpret(EmuTask t, long addr, in FaultReply r, ref int misses)
    {
        Settle(t, r);
        switch ((VmaLockResult)r.Lock)
        {
            case VmaLockResult.Miss:
                t.Machine.VmStat.vma_lock_miss++;
                misses++;
                return (VmaAttemptKind.Abort, false);
            case VmaLockResult.Abort:
                return (VmaAttemptKind.Abort, true);
            case VmaLockResult.AccessError:
                return (VmaAttemptKind.AccessError, true);
            default:
                _fresh = (addr >> t.Machine.Spec.PageShift, r.Pte);
                return (VmaAttemptKind.Handled, true);
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<MmapAttemptResult> MmapAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        DropPending(t);
        var found = await _mm.LockAndFind(KernelHost.CallerOf(t), addr);
        t.ReturnedAt(found.Clock);
        if (!found.Found)
            return new MmapAttemptResult(MmapAttemptKind.NoVma, VmFault.Done);
        var req = await Request(t, addr, flags, speculate: false);
        var reply = await Vma(found.VmaId, found.VmaNode).HandleUnderMmap(req);
        Settle(t, reply);
        var fault = (VmFault)reply.Fault;
        // Released by the callee (RETRY/COMPLETED, access error), or the arch loop's mmap_read_unlock now.
        var caller = KernelHost.CallerOf(t);
        caller.Clock = reply.MmapReleasedAt >= 0 ? reply.MmapReleasedAt : t.Clock;
        await _mm.ReadUnlock(caller);
        if (reply.AccessError)
            return new MmapAttemptResult(MmapAttemptKind.AccessError, VmFault.Done);
        _fresh = (addr >> t.Machine.Spec.PageShift, reply.Pte);
        return new MmapAttemptResult(MmapAttemptKind.Handled, fault);
    }
}
