using DistEmu.Abstractions;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Ports;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// A CPU grain's way to its address space. The RCU lookup reads the CPU's own snapshot of the VMA tree (refreshed
/// from the mm grain when it finds nothing or meets a detached VMA — a stale hit is a vma_lock_miss). A TLB miss is
/// one call to the VMA grain, which on an unusable entry goes straight on with the VMA-lock attempt in that same call,
/// so a fault on the fast path costs one message. The mmap_lock path calls the mm grain.
/// </summary>
public sealed class GrainAddressSpace : IAddressSpacePort
{
    private readonly IGrainFactory _grains;
    private readonly string _run;
    private readonly int _mmId;
    private TreeSnapshot _tree = new() { Version = -1 };
    private (long Addr, bool Write, FaultReply Reply)? _pending;

    public GrainAddressSpace(IGrainFactory grains, string run, int mmId)
    {
        _grains = grains;
        _run = run;
        _mmId = mmId;
    }

    public long Calls { get; private set; }

    private IMmGrain Mm => _grains.GetGrain<IMmGrain>(GrainKeys.Mm(_run, _mmId));
    private IVmaGrain Vma(int id) => _grains.GetGrain<IVmaGrain>(GrainKeys.Vma(_run, _mmId, id));

    private int Find(long addr)
    {
        var s = _tree.Starts;
        int lo = 0, hi = s.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (s[mid] <= addr)
            {
                if (addr < _tree.Ends[mid]) return _tree.VmaIds[mid];
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return -1;
    }

    private async Task Refresh(EmuTask t)
    {
        Calls++;
        _tree = await Mm.GetTree(t.Cpu);
    }

    private async Task<FaultRequest> Request(EmuTask t, long addr, FaultFlags flags, bool speculate)
    {
        // One frame for the fault to allocate from, two for a copy-on-write that may also need one.
        await t.Pcp.Reserve(t.Machine, t, 2);
        return new FaultRequest
        {
            Caller = KernelHost.CallerOf(t), Addr = addr, Flags = (int)flags, Frames = t.Pcp.Take(t.Machine, 2), SpeculateFault = speculate,
        };
    }

    private static void Settle(EmuTask t, FaultReply r)
    {
        if (r.Clock > t.Clock) t.Clock = r.Clock;
        if (r.Unused.Length > 0) t.Pcp.Load(t.Machine, r.Unused);
    }

    /// <summary>A speculative attempt nobody consumed (the access gave up): take its frames back.</summary>
    public void DropPending(EmuTask t)
    {
        if (_pending is { } p) Settle(t, p.Reply);
        _pending = null;
    }

    public async ValueTask<long> PageWalk(EmuTask t, long addr, bool write)
    {
        DropPending(t);
        var flags = FaultFlags.AllowRetry | FaultFlags.Killable | FaultFlags.User | (write ? FaultFlags.Write : 0);
        FaultReply reply;
        for (int tries = 0; ; tries++)
        {
            int id = Find(addr);
            if (id < 0)
            {
                await Refresh(t);
                id = Find(addr);
                if (id < 0) return 0;
            }
            var req = await Request(t, addr, flags, speculate: t.Machine.Policy.HasVmaPath());
            Calls++;
            reply = await Vma(id).WalkOrFault(req);
            if (!reply.Stale || tries > 0) break;
            Settle(t, reply);
            await Refresh(t);
        }
        if (reply.Stale)
        {
            Settle(t, reply);
            return 0;
        }
        if (reply.Attempted)
        {
            // The fault's VMA attempt already ran; the arch loop will consume it. Frames come back then.
            _pending = (addr, write, reply);
            return reply.Pte;
        }
        Settle(t, reply);
        return reply.Pte;
    }

    public async ValueTask<VmaAttemptResult> VmaAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        int misses = 0;
        if (_pending is { } p && p.Addr == addr && p.Write == flags.HasFlag(FaultFlags.Write))
        {
            _pending = null;
            var (kind, done) = Interpret(t, p.Reply, ref misses);
            if (done) return new VmaAttemptResult(kind, (VmFault)p.Reply.Fault, misses);
        }
        _pending = null;
        while (true)
        {
            await t.Delay(t.Machine.Cost.VmaLookupNs);
            int id = Find(addr);
            if (id < 0)
            {
                await Refresh(t);
                id = Find(addr);
                if (id < 0) return new VmaAttemptResult(VmaAttemptKind.Abort, VmFault.Done, misses);
            }
            var req = await Request(t, addr, flags, speculate: false);
            Calls++;
            var reply = await Vma(id).FaultUnderVmaLock(req);
            if (reply.Stale)
            {
                Settle(t, reply);
                await Refresh(t);
                continue;
            }
            var (kind, done) = Interpret(t, reply, ref misses);
            if (done) return new VmaAttemptResult(kind, (VmFault)reply.Fault, misses);
            await Refresh(t);
        }
    }

    /// <summary>Settle a VMA attempt's reply: true with its kind, or false after a MISS (look up again).</summary>
    private static (VmaAttemptKind Kind, bool Done) Interpret(EmuTask t, FaultReply r, ref int misses)
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
                return (VmaAttemptKind.Handled, true);
        }
    }

    public async ValueTask<MmapAttemptResult> MmapAttempt(EmuTask t, long addr, FaultFlags flags)
    {
        Calls++;
        var found = await Mm.LockAndFind(KernelHost.CallerOf(t), addr);
        if (found.Clock > t.Clock) t.Clock = found.Clock;
        if (!found.Found)
            return new MmapAttemptResult(MmapAttemptKind.NoVma, VmFault.Done);
        var req = await Request(t, addr, flags, speculate: false);
        Calls++;
        var reply = await Vma(found.VmaId).HandleUnderMmap(req);
        Settle(t, reply);
        var fault = (VmFault)reply.Fault;
        Calls++;
        if (reply.MmapReleasedAt >= 0)
            await Mm.ReadUnlock(t.Cpu, reply.MmapReleasedAt);   // released by the callee (RETRY/COMPLETED, access error)
        else
            await Mm.ReadUnlock(t.Cpu, t.Clock);                // the arch loop's mmap_read_unlock
        if (reply.AccessError)
            return new MmapAttemptResult(MmapAttemptKind.AccessError, VmFault.Done);
        return new MmapAttemptResult(MmapAttemptKind.Handled, fault);
    }
}
