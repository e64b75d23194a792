using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Sanitizer;

/// <summary>
/// Checks the invariants of PROTOCOL.md §7 as the emulation runs (lockdep, KASAN and the mmap_lock/VMA-lock
/// assertions rolled into one) and finds wait-for cycles. Each broken rule becomes a <see cref="Violation"/>;
/// the emulation goes on (the emulator's own state is never corrupted by a bad release).
/// </summary>
public sealed class KernelSanitizer
{
    private readonly EmuMachine _m;
    private readonly List<Violation> _violations = new();
    private readonly Dictionary<string, long> _counts = new();
    private long _total;

    public KernelSanitizer(EmuMachine m) => _m = m;

    public bool Enabled { get; set; } = true;
    /// <summary>Records kept in full (all are counted).</summary>
    public int MaxRecords { get; set; } = 200;
    public IReadOnlyList<Violation> Violations => _violations;
    public IReadOnlyDictionary<string, long> Counts => _counts;
    /// <summary>Violations counted so far (kept as a running sum: tracing reads it at the start and end of every fault).</summary>
    public long Total => _total;
    public bool Any(string invariant) => _counts.ContainsKey(invariant);

    /// <summary>Take in violations found elsewhere (another grain's sanitizer).</summary>
    public void Absorb(IEnumerable<Violation> violations, IReadOnlyDictionary<string, long> counts)
    {
        foreach (var (k, v) in counts)
        {
            _counts[k] = _counts.GetValueOrDefault(k) + v;
            _total += v;
        }
        foreach (var v in violations)
            if (_violations.Count < MaxRecords) _violations.Add(v);
    }

    /// <param name="site">The kernel path and check, without particulars (default: the invariant).</param>
    public void Report(string invariant, EmuTask t, Vma? vma, long? addr, string message, string? site = null)
    {
        if (!Enabled) return;
        _counts[invariant] = _counts.GetValueOrDefault(invariant) + 1;
        _total++;
        _m.Events.Record(t, EventKind.Violation, vma?.Id ?? -1, addr ?? 0, (long)StableHash.Of(invariant));
        t.ViolationNote ??= $"{invariant}: {message}";
        if (_violations.Count < MaxRecords)
            _violations.Add(new Violation(invariant, _m.Policy.Name(), t.ToString(), t.Cpu, vma?.Id, addr, t.Clock, message, _m.Events.Recent(t.Clock), site ?? invariant));
    }

    // ---- S6: every lock released exactly once, by its holder, in the mode it was taken ----

    internal void BadRelease(EmuTask t, RwSemaphore l, LockMode mode, string why) =>
        Report("S6", t, null, null, $"{l.Describe()} released for {mode.Name()} by {t}, who does not hold it so ({why})", $"{l.Class.Name()} {mode.Name()} release by a non-holder");

    internal void ReportFolioBadUnlock(EmuTask t, long frame, EmuTask? holder) =>
        Report("S6", t, null, null, $"folio_unlock of frame {frame} by {t}, but it is {(holder == null ? "not locked" : "locked by " + holder)}", "folio_unlock by a non-holder");

    /// <summary>S6: each fault attempt (and each syscall) ends holding nothing.</summary>
    public void CheckHoldsNothing(EmuTask t, string where, Vma? vma = null, long? addr = null)
    {
        if (!Enabled || t.Held.Count == 0) return;
        Report("S6", t, vma, addr, $"{where} ended still holding {string.Join(", ", t.Held.Select(h => Describe(h)))}", $"{where}, ended holding a lock");
    }

    private static string Describe(HeldLock h) => h.Lock is IWaitTarget w ? $"{w.Describe()} ({h.Mode.Name()})" : h.Lock.ToString() ?? "?";

    // ---- S12 ----

    internal void ReportMigrationEntriesAtUnlock(EmuTask t, Folio f) =>
        Report("S12", t, null, null, $"folio of frame {f.Frame} unlocked while {f.MigrationEntries} migration entr{(f.MigrationEntries == 1 ? "y" : "ies")} still point at it");

    public void CheckMigrationEntryInstall(EmuTask t, Vma vma, long addr, long frame)
    {
        if (!Enabled) return;
        var f = _m.Folios.Find(frame);
        if (f?.LockedBy != t)
            Report("S12", t, vma, addr, $"migration entry for frame {frame} installed while the folio is {(f?.LockedBy == null ? "unlocked" : "locked by " + f.LockedBy)}");
    }

    // ---- S13 and deadlocks ----

    public void OnSleep(EmuTask t, IWaitTarget target, bool spinning)
    {
        if (!Enabled) return;
        if (!spinning && t.HoldsAnyPtl())
            Report("S13", t, null, null, $"{t} sleeps on {target.Describe()} holding a page-table lock ({string.Join(", ", t.Held.Select(Describe))})");
        var cycle = FindCycle(t, target);
        if (cycle != null)
            Report("DEADLOCK", t, null, null, "wait-for cycle: " + cycle);
    }

    private static string? FindCycle(EmuTask start, IWaitTarget target)
    {
        var path = new List<string> { $"{start} waits for {target.Describe()}" };
        var visited = new HashSet<EmuTask>();
        return Walk(target, 0);

        string? Walk(IWaitTarget w, int depth)
        {
            if (depth > 32) return null;
            var holders = new List<EmuTask>();
            w.AddHolders(holders);
            foreach (var h in holders)
            {
                if (h == start)
                {
                    return string.Join(" → ", path) + $", held by {start}";
                }
                if (!visited.Add(h) || h.WaitingOn is not IWaitTarget next) continue;
                path.Add($"held by {h}, who waits for {next.Describe()}");
                var found = Walk(next, depth + 1);
                if (found != null) return found;
                path.RemoveAt(path.Count - 1);
            }
            return null;
        }
    }

    // ---- S5, S8, S9: what a task may touch ----

    /// <summary>S5: the task uses <paramref name="vma"/>; it must hold its read lock, its write lock epoch, or mmap_lock.</summary>
    public void CheckVmaUse(EmuTask t, Vma vma, string what, long? addr = null)
    {
        if (!Enabled) return;
        if (vma.VmLock.IsReadHeldBy(t))
        {
            CheckReadHoldStillCounts(t, vma, what, addr);
            return;
        }
        if (t.Holds(vma.Mm.MmapLock))
            return;
        Report("S5", t, vma, addr, $"{what}: {vma} used while {t} holds neither its VMA lock nor mmap_lock", $"{what}, VMA used unlocked");
    }

    /// <summary>
    /// S1 and S9 from the reader's side: a task that holds a VMA's read lock must never find the VMA write-locked by
    /// another task or detached — vma_start_write waits for every read hold. It can only when its hold was taken away
    /// (an up_read by a non-holder lowered the count, S6) and a writer got through: report what the writer did under it.
    /// </summary>
    private void CheckReadHoldStillCounts(EmuTask t, Vma vma, string what, long? addr)
    {
        if (vma.IsWriteLocked && vma.Mm.MmapLock.Writer != t)
            Report("S1", t, vma, addr,
                $"{what}: {t} runs under the read lock of {vma} while {vma.Mm.MmapLock.Writer?.ToString() ?? "a writer"} has it write-locked (vm_lock_seq = mm_lock_seq = {vma.VmLockSeq}; the lock counts {vma.VmLock.ReadCount} of its {vma.VmLock.ReaderCount} reader(s))",
                $"{what}, read hold under a VMA writer");
        else if (vma.Detached)
            Report("S9", t, vma, addr,
                $"{what}: {t} runs under the read lock of {vma}, which a writer detached meanwhile (the lock counts {vma.VmLock.ReadCount} of its {vma.VmLock.ReaderCount} reader(s): a hold was taken away)",
                $"{what}, read hold on a detached VMA");
    }

    /// <summary>S8: a page-table dereference needs the VMA read lock, mmap_lock, the PTL or the rmap lock, and a live page.</summary>
    public void CheckPageTableAccess(EmuTask t, Vma vma, PtePage? page, long addr, string what, bool viaRmap = false, bool takingPtl = false)
    {
        if (!Enabled) return;
        if (page is { Freed: true })
        {
            Report("S8", t, vma, addr, $"{what}: page-table page {page.Index} of {vma} dereferenced after munmap freed it (use-after-free)", $"{what}, freed page table");
            return;
        }
        if (!viaRmap && vma.VmLock.IsReadHeldBy(t))
        {
            CheckReadHoldStillCounts(t, vma, what, addr);
            return;
        }
        if (viaRmap || takingPtl || t.Holds(vma.Mm.MmapLock) || (page != null && t.Holds(page.Ptl)))
            return;
        Report("S8", t, vma, addr, $"{what}: page table of {vma} dereferenced holding neither the VMA lock, mmap_lock nor the PTL", $"{what}, page table unlocked");
    }

    /// <summary>S9: a detached VMA is never faulted.</summary>
    public void CheckNotDetached(EmuTask t, Vma vma, long addr)
    {
        if (Enabled && vma.Detached)
            Report("S9", t, vma, addr, $"handle_mm_fault on detached {vma}");
    }

    // ---- S1, S2, S4: writers ----

    /// <summary>S4: bounds, flags (and anon_vma other than its first NULL → set) change only while write-locked.</summary>
    public void CheckVmaChange(EmuTask t, Vma vma, string what)
    {
        if (!Enabled) return;
        if (vma.Mm.MmapLock.Writer != t)
            Report("S4", t, vma, vma.Start, $"{what} on {vma} without holding mmap_lock for write", $"{what}, without mmap_lock write");
        else if (!vma.IsWriteLocked)
            Report("S4", t, vma, vma.Start, $"{what} on {vma} which is not write-locked (vm_lock_seq {vma.VmLockSeq} ≠ mm_lock_seq {vma.Mm.MmLockSeq})", $"{what}, VMA not write-locked");
    }

    /// <summary>S4 (§8.1): a VMA's entries are copied for fork only while no fault holds its read lock.</summary>
    public void CheckNoFaultHolds(EmuTask t, Vma vma, string what)
    {
        if (!Enabled || vma.VmLock.ReaderCount == 0) return;
        var holders = new List<EmuTask>();
        vma.VmLock.AddHolders(holders);
        Report("S4", t, vma, vma.Start, $"{what} on {vma} while {string.Join(", ", holders)} hold(s) its read lock: a fault races the copy", $"{what}, a fault races it");
    }

    /// <summary>S1: at vma_start_write's publication, no reader holds the VMA lock and the caller is the only mmap writer.</summary>
    public void CheckWriteLockPublished(EmuTask t, Vma vma)
    {
        if (!Enabled) return;
        if (vma.VmLock.ReaderCount > 0)
            Report("S1", t, vma, vma.Start,
                $"vma_start_write of {vma} got the lock while {vma.VmLock.ReaderCount} reader(s) still hold it ({vma.VmLock.HolderList()}; the lock counts {vma.VmLock.ReadCount})",
                "vma_start_write, readers still hold the VMA");
        if (vma.Mm.MmapLock.Writer != t)
            Report("S1", t, vma, vma.Start, $"{vma} write-locked by {t}, who does not hold mmap_lock for write");
    }

    /// <summary>S1: a read lock was granted; the VMA must not be write-locked in this epoch.</summary>
    public void CheckReadLockGranted(EmuTask t, Vma vma, long addr)
    {
        if (Enabled && vma.IsWriteLocked)
            Report("S1", t, vma, addr, $"read lock of {vma} granted while it is write-locked (vm_lock_seq = mm_lock_seq = {vma.VmLockSeq})");
    }

    /// <summary>S2: mm_lock_seq moves by exactly +1, only by the mmap_lock write holder.</summary>
    public void CheckSeqBump(EmuTask t, MmStruct mm, long before, long after)
    {
        if (!Enabled) return;
        if (after != before + 1)
            Report("S2", t, null, null, $"{mm}.mm_lock_seq moved from {before} to {after}");
        if (mm.MmapLock.Writer != t)
            Report("S2", t, null, null, $"{mm}.mm_lock_seq bumped by {t}, who does not hold mmap_lock for write");
    }

    // ---- S7, L2, L3, A1: the fault loop ----

    public void CheckResultContract(EmuTask t, Vma vma, long addr, Fault.VmFault result, bool enteredUnderVmaLock, bool stillHeld, bool expectedHeld)
    {
        if (!Enabled || stillHeld == expectedHeld) return;
        Report("S7", t, vma, addr,
            $"handle_mm_fault returned {result} under {(enteredUnderVmaLock ? "the VMA lock" : "mmap_lock")}: the lock should be " +
            $"{(expectedHeld ? "still held by the caller" : "released by the callee")} under {_m.Policy.Name()}, but it is {(stillHeld ? "held" : "released")}");
    }
}
