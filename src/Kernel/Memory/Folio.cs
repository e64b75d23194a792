using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Memory;

/// <summary>
/// The lockable state of one frame's folio (PG_locked and its wait queue). Only folios that are locked or waited
/// on have an entry, so an idle touched page costs nothing here. <see cref="MigrationEntries"/> counts the
/// migration entries pointing at this folio (S12: they exist only while the migrator holds it locked).
/// </summary>
public sealed class Folio : IWaitTarget
{
    public long Frame { get; }
    public EmuTask? LockedBy { get; internal set; }
    public long LockedAt { get; internal set; }
    public int MigrationEntries { get; internal set; }
    /// <summary>munmap zapped the last mapping while the folio was locked: the unlocker frees the frame (the locker's reference).</summary>
    public bool FreeOnUnlock { get; internal set; }
    /// <summary>Pages of a large folio whose PMD was split while it was locked, zapped one by one meanwhile: freed at unlock.</summary>
    internal List<long>? DeferredPages;
    internal Queue<(EmuTask Task, bool WantsLock, long Since)>? Waiters;

    public Folio(long frame) => Frame = frame;

    public int WaiterCount => Waiters?.Count ?? 0;

    public string Describe() => $"folio_lock frame {Frame}";
    public void AddHolders(List<EmuTask> into)
    {
        if (LockedBy != null) into.Add(LockedBy);
    }
}

/// <summary>folio_lock / folio_trylock / folio_unlock / folio_wait_locked over a sparse table of folios.</summary>
public sealed class FolioTable
{
    private readonly EmuMachine _m;
    private readonly Dictionary<long, Folio> _folios = new();

    /// <summary>
    /// The folio's last_cpupid (include/linux/mm.h: folio_xchg_last_cpupid) for the frames that took a NUMA hint fault
    /// since they were allocated: the CPU of the last one. Sparse: only NUMA balancing fills it, and a freed frame leaves.
    /// </summary>
    private readonly Dictionary<long, int> _lastCpupid = new();

    /// <summary>
    /// Heads of large folios (THPs: 512 contiguous, 512-aligned frames). A page of one finds its head by alignment
    /// (compound_head). A THP stays one folio while PMD-mapped; when its PMD is split (__split_huge_pmd) it is split
    /// into 512 small folios at once (deferred_split_folio run at once), or, if it is locked then (a migration in
    /// flight), when it is unlocked (<see cref="_splitAtUnlock"/>).
    /// </summary>
    private readonly HashSet<long> _large = new();
    private readonly HashSet<long> _splitAtUnlock = new();

    public FolioTable(EmuMachine m) => _m = m;

    /// <summary>A THP was allocated with head <paramref name="head"/>.</summary>
    internal void MarkLarge(long head) => _large.Add(head);

    /// <summary>Whether <paramref name="head"/> heads a large folio (folio_test_large).</summary>
    public bool IsLarge(long head) => _large.Count != 0 && _large.Contains(head);

    /// <summary>Large folios there are (PMD-mapped THPs and THPs waiting to be split at unlock).</summary>
    public int LargeCount => _large.Count;

    /// <summary>page_folio: the head of the large folio <paramref name="frame"/> belongs to, else the frame itself.</summary>
    public long FolioOf(long frame)
    {
        if (_large.Count == 0) return frame;
        long head = frame & ~(long)(NumaNode.HugeFrames - 1);
        return _large.Contains(head) ? head : frame;
    }

    /// <summary>split_folio after __split_huge_pmd: now if unlocked, else when its locker unlocks it.</summary>
    internal void SplitLarge(long head)
    {
        if (IsLocked(head)) _splitAtUnlock.Add(head);
        else _large.Remove(head);
    }

    /// <summary>Whether the PMD of locked large folio <paramref name="head"/> was split (it is split when unlocked).</summary>
    public bool SplitPending(long head) => _splitAtUnlock.Contains(head);

    /// <summary>The THP's block went back to its node.</summary>
    internal void ForgetLarge(long head)
    {
        _large.Remove(head);
        _splitAtUnlock.Remove(head);
    }

    /// <summary>folio_xchg_last_cpupid: record <paramref name="cpu"/>, return the previous CPU or -1 (unset).</summary>
    public int XchgLastCpupid(long frame, int cpu)
    {
        int last = _lastCpupid.TryGetValue(frame, out int c) ? c : -1;
        _lastCpupid[frame] = cpu;
        return last;
    }

    /// <summary>folio_migrate_flags: the new folio takes the old one's last_cpupid.</summary>
    internal void MigrateLastCpupid(long from, long to)
    {
        if (_lastCpupid.Count == 0) return;
        if (_lastCpupid.Remove(from, out int c)) _lastCpupid[to] = c;
    }

    /// <summary>page_cpupid_reset_last: a frame going back to its node forgets its last hint fault.</summary>
    internal void ResetLastCpupid(long frame)
    {
        if (_lastCpupid.Count != 0) _lastCpupid.Remove(frame);
    }

    public Folio? Find(long frame) => _folios.GetValueOrDefault(frame);
    public bool IsLocked(long frame) => _folios.TryGetValue(frame, out var f) && f.LockedBy != null;
    public int Count => _folios.Count;

    private Folio GetOrAdd(long frame)
    {
        if (!_folios.TryGetValue(frame, out var f))
            _folios[frame] = f = new Folio(frame);
        return f;
    }

    /// <summary>folio_trylock.</summary>
    public bool TryLock(EmuTask t, long frame)
    {
        var f = GetOrAdd(frame);
        if (f.LockedBy != null)
            return false;
        Grant(f, t, t.Clock, contended: false, waited: 0);
        return true;
    }

    /// <summary>folio_lock: sleeps until the folio is handed over.</summary>
    public SleepAwaitable Lock(EmuTask t, long frame)
    {
        if (TryLock(t, frame))
            return default;
        var f = _folios[frame];
        _m.Sanitizer.OnSleep(t, f, spinning: false);
        (f.Waiters ??= new()).Enqueue((t, true, t.Clock));
        t.WaitingOn = f;
        return new SleepAwaitable(t.Waiter.Arm());
    }

    /// <summary>
    /// folio_wait_locked, split as the kernel splits it: register as a waiter of a locked folio now (possibly under a
    /// PTL); the caller drops its spinlocks, tells the sanitizer it sleeps, then awaits. Completed if not locked.
    /// </summary>
    public SleepAwaitable WaitUnlocked(EmuTask t, long frame)
    {
        if (!_folios.TryGetValue(frame, out var f) || f.LockedBy == null)
            return default;
        (f.Waiters ??= new()).Enqueue((t, false, t.Clock));
        t.WaitingOn = f;
        return new SleepAwaitable(t.Waiter.Arm());
    }

    /// <summary>folio_unlock: wakes every waiter; the first that wants the lock gets it.</summary>
    public void Unlock(EmuTask t, long frame)
    {
        if (!_folios.TryGetValue(frame, out var f) || f.LockedBy != t)
        {
            _m.Sanitizer.ReportFolioBadUnlock(t, frame, f?.LockedBy);
            return;
        }
        long now = t.Clock;
        if (f.MigrationEntries != 0)
            _m.Sanitizer.ReportMigrationEntriesAtUnlock(t, f);
        _m.LockStats[LockClass.FolioLock, LockMode.Write].Hold.Record(now - f.LockedAt);
        if (!t.LockEventsMuted) _m.Observer?.OnLockReleased(t, f, LockMode.Write, f.LockedAt);
        _m.Events.Record(t, Sanitizer.EventKind.FolioUnlock, frame, 0, now - f.LockedAt);
        f.LockedBy = null;
        for (int i = t.Held.Count - 1; i >= 0; i--)
        {
            if (ReferenceEquals(t.Held[i].Lock, f))
            {
                t.Held.RemoveAt(i);
                break;
            }
        }
        long wakeAt = now + _m.Cost.LockHandoffNs;
        if (f.Waiters != null)
        {
            int n = f.Waiters.Count;
            for (int i = 0; i < n; i++)
            {
                var (w, wantsLock, since) = f.Waiters.Dequeue();
                if (wantsLock && f.LockedBy == null)
                {
                    Grant(f, w, wakeAt, contended: true, waited: wakeAt - since);
                    w.Waiter.Wake(wakeAt);
                }
                else if (wantsLock)
                {
                    f.Waiters.Enqueue((w, true, since));
                }
                else
                {
                    w.Waiter.Wake(wakeAt);
                }
            }
        }
        if (f.FreeOnUnlock && f.LockedBy == null)
        {
            f.FreeOnUnlock = false;
            if (IsLarge(frame) && !_splitAtUnlock.Contains(frame))
            {
                _m.Frames.Anon -= NumaNode.HugeFrames;
                _m.FreeHugeFolio(frame);
            }
            else
            {
                _m.Frames.Anon--;
                _m.FreeFrame(frame);
            }
        }
        if (f.DeferredPages != null && f.LockedBy == null)
        {
            foreach (long p in f.DeferredPages)
            {
                _m.Frames.Anon--;
                _m.FreeFrame(p);
            }
            f.DeferredPages = null;
        }
        if (f.LockedBy == null && _splitAtUnlock.Remove(frame))
            _large.Remove(frame);
        if (f.LockedBy == null && f.WaiterCount == 0)
            Forget(f);
    }

    /// <summary>The last mapping of a locked folio went away: free the frame when its locker unlocks it.</summary>
    internal void DeferFree(long frame) => GetOrAdd(frame).FreeOnUnlock = true;

    /// <summary>Page <paramref name="page"/> of locked large folio <paramref name="head"/> (its PMD split) was zapped: free it at unlock.</summary>
    internal void DeferFreePage(long head, long page) => (GetOrAdd(head).DeferredPages ??= new()).Add(page);

    private void Grant(Folio f, EmuTask t, long at, bool contended, long waited)
    {
        f.LockedBy = t;
        f.LockedAt = at;
        t.Held.Add(new HeldLock(f, LockMode.Write));
        var s = _m.LockStats[LockClass.FolioLock, LockMode.Write];
        s.Acquisitions++;
        if (contended)
        {
            s.Contentions++;
            s.Wait.Record(waited);
        }
        _m.Events.Record(t, Sanitizer.EventKind.FolioLock, f.Frame, 0, waited);
        if (!t.LockEventsMuted) _m.Observer?.OnLockAcquired(t, f, LockMode.Write, waited);
    }

    private void Forget(Folio f)
    {
        if (f.MigrationEntries == 0 && f.LockedBy == null && f.WaiterCount == 0 && !f.FreeOnUnlock && f.DeferredPages == null)
            _folios.Remove(f.Frame);
    }

    internal void AddMigrationEntry(long frame, int n = 1) => GetOrAdd(frame).MigrationEntries += n;

    internal void RemoveMigrationEntry(long frame)
    {
        var f = GetOrAdd(frame);
        f.MigrationEntries--;
        if (f.MigrationEntries == 0 && f.LockedBy == null && f.WaiterCount == 0)
            _folios.Remove(frame);
    }
}
