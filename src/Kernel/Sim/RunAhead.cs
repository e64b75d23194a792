using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Kernel.Sim;

/// <summary>
/// Conservative lookahead for the sim engine: a task may pass a sync point ahead of tasks with earlier clocks when
/// none of them can touch what it touches before it gets there. That holds when
/// <list type="bullet">
/// <item>it runs only up to the earliest time any other task could do something outside a run of loads, stores and
/// think time (its op stream, read ahead, says so; each op takes at least the cost of a TLB-hit access): a task in a
/// run may not leave it sooner, and a task outside one (a system call, a barrier) acts from its clock on. A task asleep
/// in an rwsem's queue, in a run or not, acts no sooner than that lock can wake it: no sooner than the least clock of
/// the lock's holders and its woken writer, who alone can wake the queue. So no system call can write the VMA tree, a
/// page table of another range, a TLB or mmap_lock for write at a time the task passes: a task outside a run goes in
/// emulated-time order, and does what it does when everyone else's clock is past its own or bounded by it;</item>
/// <item>the tasks' runs touch disjoint ranges, widened to whole VMAs and page-table pages, so no two take one VMA
/// lock or PTL, or read each other's entries;</item>
/// <item>no two runs map one file (they would meet in its page cache and folios), none touches shared anonymous
/// memory, and no op that leaves entries a fault would act on beyond its own range (NUMA hinting, migration, swap and
/// COW after fork free frames or shoot down other CPUs' TLBs) has run.</item>
/// </list>
/// What such runs still share, they share in a way whose order does not matter (mmap_lock taken for read with no
/// writer, the tree read, counters and statistics), except a node's free list: a per-CPU list refill is an exact sync
/// point (<see cref="EmuTask.DelayExact"/>), so frames come out as without run-ahead. Results are those of the exact
/// engine; only the order of the event log's entries differs (RunAheadTests compare the two).
/// </summary>
public sealed class RunAhead
{
    private readonly MmStruct _mm;
    private readonly EmuMachine _machine;
    private readonly List<EmuTask> _tasks = new();
    private readonly long _pmdSize;
    private int _epoch;
    private int _checkedEpoch = -1;
    private bool _tainted;

    public RunAhead(EmuMachine machine, MmStruct mm)
    {
        _mm = mm;
        _machine = machine;
        _pmdSize = machine.Spec.PageSize * PtePage.Entries;
        (AccessMinNs, MissMinNs) = MinAccessNs(machine);
    }

    /// <summary>
    /// The least emulated time a load or store takes on <paramref name="machine"/>, whatever it meets (Access), and when
    /// its page is not in the TLB (Miss): what an op window counts towards a task's earliest exit from its run.
    /// </summary>
    public static (long Access, long Miss) MinAccessNs(EmuMachine machine)
    {
        int minDistance = machine.Spec.Distance.SelectMany(r => r).Min();
        var cost = machine.Cost;
        return (Math.Max(0, Math.Min(cost.AccessAtDistanceNs(minDistance), cost.PageWalkNs)),
            Math.Max(0, cost.PageWalkNs + Math.Min(cost.AccessAtDistanceNs(minDistance), cost.FaultEntryNs)));
    }

    /// <summary>
    /// The least emulated time one load or store takes: a TLB hit costs the access at the nearest distance, anything
    /// else starts with a page walk.
    /// </summary>
    public long AccessMinNs { get; }

    /// <summary>
    /// The least a load or store takes when its page is not in the TLB: the page walk, then either the access or a fault
    /// (which at least enters the kernel).
    /// </summary>
    public long MissMinNs { get; }

    /// <summary>
    /// Stretches granted: times a task was let past a sync point ahead of an earlier task, after which it passes further
    /// ones on its own until its clock reaches the bound it was given or what the engine knew changes.
    /// </summary>
    public long Grants { get; private set; }

    /// <summary>Op kinds that leave entries a later fault acts on beyond its own range (see the class summary).</summary>
    public static bool Taints(OpKind k) => k is OpKind.NumaScan or OpKind.Migrate or OpKind.PageOut or OpKind.Fork;

    /// <summary>Take part: every task of the run must, or nobody runs ahead.</summary>
    public void Register(EmuTask t)
    {
        t.Claim = new RunAheadClaim();
        _tasks.Add(t);
        Changed();
    }

    /// <summary>Before <paramref name="t"/> runs <paramref name="w"/>'s current op, at its clock.</summary>
    internal void BeforeOp(EmuTask t, OpWindow w)
    {
        var c = t.Claim!;
        int left = w.RunLeft;
        if (left == 0)
        {
            if (Taints(w.Current.Kind)) _tainted = true;
            if (c.InRun)
            {
                c.InRun = false;
                c.End = long.MinValue;
                Changed();
            }
            return;
        }
        bool grew = w.RunLo <= w.RunHi && (w.RunLo < c.Widened.Lo || w.RunHi >= c.Widened.Hi);
        if (!c.InRun || grew)
        {
            // Entering a run, or its range grew past the claim last checked (an entry's bump already forces the check
            // that widens the claim): check everyone again.
            c.InRun = true;
            Changed();
        }
        c.RawLo = w.RunLo;
        c.RawHi = w.RunHi;
        c.End = w.RunIsLast ? long.MaxValue : t.Clock + w.RunMinNs;
    }

    /// <summary><paramref name="t"/> finished its stream.</summary>
    public void Exit(EmuTask t)
    {
        var c = t.Claim!;
        c.Live = false;
        c.InRun = false;
        c.End = long.MaxValue;
        Changed();
    }

    /// <summary>A task entered or left a run, its claim grew, or it finished: every claim is checked again before use.</summary>
    private void Changed()
    {
        _epoch++;
        foreach (var t in _tasks) t.FreeUntil = long.MinValue;
    }

    /// <summary>May <paramref name="t"/>, whose clock is past the engine's next event, go on without yielding?</summary>
    public bool May(EmuTask t)
    {
        var c = t.Claim;
        if (c is null || !c.InRun || _tainted)
            return false;
        if (_checkedEpoch != _epoch)
            CheckClaims();
        if (!c.Disjoint)
            return false;
        if (c.Epoch != _epoch || t.Clock >= c.Bound)
        {
            c.Epoch = _epoch;
            c.Bound = LeastOtherEnd(t);
            if (t.Clock >= c.Bound)
                return false;
        }
        Grants++;
        t.FreeUntil = c.Bound;
        return true;
    }

    private long LeastOtherEnd(EmuTask t)
    {
        long least = long.MaxValue;
        foreach (var o in _tasks)
        {
            if (o == t || !o.Claim!.Live) continue;
            // A task outside a run may do anything from its clock on (a system call, a barrier): its end is its clock.
            // Asleep in an rwsem's queue (in a run: a fault fallen back to mmap_read_lock behind a writer), it does
            // nothing before that lock can wake it.
            long end = o.Claim.InRun ? o.Claim.End : o.Clock;
            long woken = EarliestWake(o);
            if (woken > end) end = woken;
            if (end < least) least = end;
        }
        return least;
    }

    /// <summary>
    /// The earliest emulated time at which <paramref name="o"/> can be woken, if it sleeps on an rwsem (a writer in
    /// mmap_write_lock behind another CPU's munmap, a fault fallen back to mmap_read_lock behind that writer, a
    /// vma_start_write waiting for fault readers): it acts only once woken (rwsem_mark_wake), at the wake's time or
    /// later, and nothing wakes it before the lock's holders act (<see cref="RwSemaphore.EarliestWake"/>); long.MinValue
    /// otherwise. The bound stays valid as clocks grow, so a wake needs no new check: the woken task's clock is already
    /// at or past it. With a bug switched in (an up_read by a non-holder can wake the queue) it is not used.
    /// </summary>
    private long EarliestWake(EmuTask o)
    {
        if (o.WaitingOn is RwSemaphore sem && !o.Waiter.IsCompleted && !_machine.Bugs.AnySet())
            return sem.EarliestWake();
        return long.MinValue;
    }

    /// <summary>
    /// Widen every claim to whole VMAs and page-table pages and mark those that are eligible and overlap no other. A task
    /// outside a run takes no part (it bounds the others by its clock instead: <see cref="LeastOtherEnd"/>); whatever it
    /// changed in the tree it changed at a time no task has left behind, so the tree read here is the one every access
    /// before the bound sees.
    /// </summary>
    private void CheckClaims()
    {
        _checkedEpoch = _epoch;
        var claims = new List<RunAheadClaim>(_tasks.Count);
        foreach (var t in _tasks)
        {
            var c = t.Claim!;
            c.Disjoint = false;
            if (!c.Live || !c.InRun) continue;
            c.Disjoint = Widen(c);
            claims.Add(c);
        }
        var meets = RunClaim.Meetings(claims.Select(c => c.Widened).ToList());
        for (int i = 0; i < claims.Count; i++)
            if (meets[i]) claims[i].Disjoint = false;
    }

    /// <summary>
    /// Widen <paramref name="c"/>'s raw range and list the files its VMAs map (<see cref="RunClaim.Widen"/>, the rule the
    /// orleans engine's time keepers use too); false if it meets memory a run may not run ahead on (shared anonymous memory).
    /// </summary>
    private bool Widen(RunAheadClaim c)
    {
        IEnumerable<RunClaim.VmaRange> vmas = c.RawLo > c.RawHi ? [] : _mm.Tree.Overlapping(c.RawLo, c.RawHi + 1)
            .Select(v => new RunClaim.VmaRange(v.Start, v.End, v.File?.Id ?? -1, v.File is null && (v.Flags & VmFlags.Shared) != 0));
        var claim = RunClaim.Widen(c.RawLo, c.RawHi, _pmdSize, vmas);
        c.Widened = claim;
        return claim.Eligible;
    }
}
