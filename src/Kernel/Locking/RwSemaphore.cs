using System.Runtime.CompilerServices;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Locking;

/// <summary>
/// A reader/writer semaphore with a FIFO of waiters (kernel/locking/rwsem.c), writer-fair: once anyone waits, new
/// readers queue behind and every trylock fails. Used for mmap_lock and vm_lock; a PTL is one taken only for
/// write. Holds are emulated intervals: a grant after a wait happens at the release time plus the hand-off cost,
/// and the waiter's clock jumps there. Releasing what the caller does not hold is reported as S6. An up_read by a
/// task that does not hold the lock does what the kernel's does (rwsem.c __up_read: the count drops by one reader bias,
/// whoever calls it): while others hold it for read it takes one of their holds away — the count goes one too low, and
/// a writer can get the lock while a reader still runs under it (<see cref="ReadCount"/> against
/// <see cref="ReaderCount"/>). On a lock nobody holds for read it is ignored (the kernel's count would underflow; not
/// modelled), as is any other bad release, so that the emulator's own state stays sound.
/// <para>
/// Wake order is rwsem_mark_wake's: when the lock goes free, a writer first in the queue is woken alone; a reader
/// first in the queue wakes every queued reader (up to <see cref="MaxReadersWakeup"/>), past the writers between
/// them, which keep their places (the "reader phase" of rwsem.c's phase-fair design). downgrade_write wakes the
/// queued readers the same way, never a writer. A woken writer is not given the lock: it takes it when it runs,
/// <see cref="EmuMachine.Cost"/>.LockHandoffNs later, and until then a writer that arrives and spins
/// (rwsem_optimistic_spin) may steal it — unless the woken writer had waited longer than
/// <see cref="RwsemWaitTimeoutNs"/> when the lock was released: then the lock is handed off to it (the kernel's
/// RWSEM_FLAG_HANDOFF), and nobody steals. New readers never steal: PROTOCOL.md §1 keeps them behind a waiting writer
/// (rwsem_mark_wake: "readers will block as they will notice the queued writer"; the kernel's reader slow path can
/// still steal in that window, which is not modelled). A PTL is a queued spinlock, not an rwsem: its waiters get it in
/// FIFO order, always handed over directly.
/// </para>
/// </summary>
public sealed class RwSemaphore : IWaitTarget
{
    private readonly EmuMachine _m;
    /// <summary>Read holders; allocated on the first read grant (a PTL, one per page-table page, is only ever written).</summary>
    private List<(EmuTask Task, long Since)>? _readers;
    /// <summary>
    /// The reader count as the rwsem keeps it (sem->count's reader bits): one per read grant, one less per up_read. It
    /// equals the number of <see cref="_readers"/> until an up_read by a non-holder takes away a hold.
    /// </summary>
    private int _readCount;
    private EmuTask? _writer;
    private long _writerSince;
    private Queue<(EmuTask Task, LockMode Mode, long Since)>? _waiters;
    /// <summary>The first waiter, a writer, woken and on its way to take the lock at <see cref="_wokenWriterAt"/>.</summary>
    private EmuTask? _wokenWriter;
    private long _wokenWriterAt;

    /// <summary>RWSEM_WAIT_TIMEOUT: DIV_ROUND_UP(HZ, 250) jiffies = 4 ms, here in emulated ns.</summary>
    public const long RwsemWaitTimeoutNs = 4_000_000;
    /// <summary>MAX_READERS_WAKEUP: the most readers one rwsem_mark_wake lets in.</summary>
    public const int MaxReadersWakeup = 0x100;

    /// <summary>Times the lock was handed off to a writer that had waited past <see cref="RwsemWaitTimeoutNs"/>.</summary>
    public long Handoffs { get; private set; }
    /// <summary>Times a spinning writer took the lock from a woken writer that was still on its way (rwsem_opt_wlock).</summary>
    public long Steals { get; private set; }

    public LockClass Class { get; }
    public string Name { get; }

    public RwSemaphore(EmuMachine machine, LockClass @class, string name, bool token = false)
    {
        _m = machine;
        Class = @class;
        Name = name;
        Token = token;
    }

    /// <summary>
    /// A token stands for a lock held elsewhere (under orleans, a VMA grain's copy of mmap_lock, held for the length of a
    /// call on behalf of a caller that holds the real one in the mm grain): it takes part in the sanitizer's checks but
    /// not in lock statistics.
    /// </summary>
    public bool Token { get; }

    /// <summary>Emulated time of the last release (or downgrade).</summary>
    public long LastReleasedAt { get; private set; } = -1;

    public EmuTask? Writer => _writer;
    /// <summary>The tasks that hold the lock for read, as they believe (each took it and has not released it).</summary>
    public int ReaderCount => _readers?.Count ?? 0;
    /// <summary>The reader count the lock itself keeps: lower than <see cref="ReaderCount"/> once a bad up_read took a hold away.</summary>
    public int ReadCount => _readCount;
    public bool HasWaiters => _waiters is { Count: > 0 };
    /// <summary>Held, as the lock sees it: a writer may take it when this is false, whoever still believes they hold it.</summary>
    public bool IsLocked => _writer != null || _readCount > 0;

    public bool IsReadHeldBy(EmuTask t) => ReaderIndex(t) >= 0;

    /// <summary>
    /// The earliest emulated time at which a task asleep in this lock's queue can be woken, as far as the lock knows
    /// now; long.MinValue when it cannot say. A waiter is woken by rwsem_mark_wake, which only a holder's up_read,
    /// up_write or downgrade_write calls (rwsem_wake, rwsem_downgrade_wake), or by the woken writer first in the
    /// queue taking the lock and later releasing it. New holders cannot come before those: readers queue behind the
    /// waiters, and a writer that steals from the woken writer (rwsem_optimistic_spin) leaves it first in the queue,
    /// so its release wakes only that writer. Each of them acts at its clock or later, and clocks only grow: the least
    /// of their clocks now bounds every wake of this queue from below. (An up_read by a task that holds nothing, one
    /// of PROTOCOL.md §8's bugs, could wake sooner: the caller does not ask then.)
    /// </summary>
    internal long EarliestWake()
    {
        long least = long.MaxValue;
        if (_writer != null) least = _writer.Clock;
        if (_wokenWriter != null && _wokenWriter.Clock < least) least = _wokenWriter.Clock;
        if (_readers != null)
            foreach (var (task, _) in _readers)
                if (task.Clock < least) least = task.Clock;
        return least == long.MaxValue ? long.MinValue : least;
    }

    /// <summary>Where <paramref name="t"/> is among the readers, or -1 (a loop: a lambda would allocate a closure per release).</summary>
    private int ReaderIndex(EmuTask t)
    {
        if (_readers is null) return -1;
        for (int i = 0; i < _readers.Count; i++)
            if (_readers[i].Task == t) return i;
        return -1;
    }

    /// <summary>down_read_trylock: fails if a writer holds or anyone waits.</summary>
    public bool TryRead(EmuTask t)
    {
        if (_writer != null || HasWaiters)
            return false;
        GrantRead(t, t.Clock, contended: false, requestedAt: t.Clock);
        return true;
    }

    /// <summary>down_write_trylock.</summary>
    public bool TryWrite(EmuTask t)
    {
        if (IsLocked || HasWaiters)
            return false;
        GrantWrite(t, t.Clock, contended: false, requestedAt: t.Clock);
        return true;
    }

    /// <summary>down_read: sleeps (FIFO) while a writer holds or anyone waits.</summary>
    public SleepAwaitable AcquireRead(EmuTask t)
    {
        if (TryRead(t))
            return default;
        return Enqueue(t, LockMode.Read);
    }

    /// <summary>
    /// down_write: takes a free lock, or steals it from a woken writer still on its way (rwsem_optimistic_spin), or
    /// sleeps (FIFO) while anyone holds or waits.
    /// </summary>
    public SleepAwaitable AcquireWrite(EmuTask t)
    {
        if (TryWrite(t) || RwsemOptimisticSpin(t))
            return default;
        return Enqueue(t, LockMode.Write);
    }

    /// <summary>
    /// rwsem_optimistic_spin / rwsem_try_write_lock_unqueued: the lock is free but its first waiter, a woken writer,
    /// has not run yet (in emulated time) and was not handed the lock: a writer arriving now takes it. The woken writer
    /// finds it taken when it runs and sleeps again, first in the queue.
    /// </summary>
    private bool RwsemOptimisticSpin(EmuTask t)
    {
        if (_wokenWriter is null || IsLocked || t.Clock >= _wokenWriterAt)
            return false;
        Steals++;
        // LOCK_CONTENDED: the trylock failed (waiters), so lock_stat counts a contention, without a wait.
        GrantWrite(t, t.Clock, contended: true, requestedAt: t.Clock);
        return true;
    }

    /// <summary>
    /// rwsem_try_write_lock for a woken writer that now runs: it takes the lock unless a spinner holds it; then it sleeps
    /// again at the head of the queue (it kept its place, and its enqueue time, for the hand-off timeout).
    /// </summary>
    internal bool RwsemTryWriteLock(EmuTask t)
    {
        if (_wokenWriter == t) _wokenWriter = null;
        if (IsLocked)
            return false;
        var (task, mode, since) = _waiters!.Dequeue();
        if (task != t || mode != LockMode.Write)
            throw new InvalidOperationException($"{Describe()}: {t} woke to take the lock but {task} ({mode.Name()}) is first in the queue");
        GrantWrite(t, t.Clock, contended: true, requestedAt: since);
        return true;
    }

    private SleepAwaitable Enqueue(EmuTask t, LockMode mode)
    {
        _m.Sanitizer.OnSleep(t, this, spinning: Class == LockClass.Ptl);
        if (_m.Observer != null && !Token && !t.LockEventsMuted)
        {
            var holders = new List<EmuTask>();
            AddHolders(holders);
            _m.Observer.OnLockContended(t, this, mode, holders);
        }
        (_waiters ??= new()).Enqueue((t, mode, t.Clock));
        t.WaitingOn = this;
        return new SleepAwaitable(t.Waiter.Arm());
    }

    /// <summary>up_read / up_write. Returns false (and reports S6) if <paramref name="t"/> does not hold it so.</summary>
    public bool Release(EmuTask t, LockMode mode)
    {
        long now = t.Clock;
        if (mode == LockMode.Write)
        {
            if (_writer != t)
            {
                _m.Sanitizer.BadRelease(t, this, mode, _writer == null ? "not write-locked" : $"write-locked by {_writer}");
                return false;
            }
            if (!Token)
            {
                _m.LockStats[Class, LockMode.Write].Hold.Record(now - _writerSince);
                _m.Events.Record(t, EventKind.Unlock, Class, mode, now - _writerSince);
                if (!t.LockEventsMuted) _m.Observer?.OnLockReleased(t, this, mode, _writerSince);
            }
            _writer = null;
        }
        else
        {
            int i = ReaderIndex(t);
            if (i < 0)
            {
                if (_writer == null && _readCount > 0)
                {
                    // __up_read decrements the count whoever calls it: one of the holders' read holds is gone.
                    _readCount--;
                    _m.Sanitizer.BadRelease(t, this, mode,
                        $"read-held by {HolderList()} only: the reader count drops to {_readCount} while they still run under it");
                    LastReleasedAt = now;
                    if (!IsLocked) RwsemMarkWake(now, readOwned: false);
                    return false;
                }
                _m.Sanitizer.BadRelease(t, this, mode,
                    _writer != null ? $"write-locked by {_writer}" : ReaderCount == 0 ? "not locked (double unlock?)" : $"read-held by {HolderList()}, whose holds were already taken away");
                return false;
            }
            if (!Token)
            {
                _m.LockStats[Class, LockMode.Read].Hold.Record(now - _readers![i].Since);
                _m.Events.Record(t, EventKind.Unlock, Class, mode, now - _readers![i].Since);
                if (!t.LockEventsMuted) _m.Observer?.OnLockReleased(t, this, mode, _readers![i].Since);
            }
            _readers!.RemoveAt(i);
            if (_readCount > 0) _readCount--; // 0: this hold was taken away by a bad up_read already
        }
        RemoveHeld(t, mode);
        LastReleasedAt = now;
        // up_read / up_write call rwsem_wake only when the lock is free (the last reader out).
        if (!IsLocked) RwsemMarkWake(now, readOwned: false);
        return true;
    }

    /// <summary>
    /// downgrade_write: the writer becomes a reader; rwsem_downgrade_wake lets the queued readers in as a release does
    /// (RWSEM_WAKE_READ_OWNED: every queued reader past the writers, if a reader is first; never a writer).
    /// </summary>
    public void Downgrade(EmuTask t)
    {
        long now = t.Clock;
        if (_writer != t)
        {
            _m.Sanitizer.BadRelease(t, this, LockMode.Write, "downgrade by a non-writer");
            return;
        }
        _m.LockStats[Class, LockMode.Write].Hold.Record(now - _writerSince);
        if (!t.LockEventsMuted) _m.Observer?.OnLockReleased(t, this, LockMode.Write, _writerSince);
        _writer = null;
        RemoveHeld(t, LockMode.Write);
        (_readers ??= new(2)).Add((t, now));
        _readCount++;
        if (!t.LockEventsMuted) _m.Observer?.OnLockAcquired(t, this, LockMode.Read, 0);
        t.Held.Add(new HeldLock(this, LockMode.Read));
        RwsemMarkWake(now, readOwned: true);
    }

    /// <summary>
    /// rwsem_mark_wake. A writer first in the queue: woken alone (a PTL's, or one past the hand-off timeout, is given
    /// the lock; any other takes it when it runs, see <see cref="RwsemTryWriteLock"/>). A reader first: every queued
    /// reader, up to <see cref="MaxReadersWakeup"/>, is granted the lock, skipping the writers, which keep their places.
    /// <paramref name="readOwned"/>: called by downgrade_write, which wakes readers only.
    /// </summary>
    private void RwsemMarkWake(long releasedAt, bool readOwned)
    {
        if (_waiters is not { Count: > 0 }) return;
        long grantAt = releasedAt + _m.Cost.LockHandoffNs;
        var (task, mode, since) = _waiters.Peek();
        if (mode == LockMode.Write)
        {
            if (readOwned || _wokenWriter == task || IsLocked) return;
            // RWSEM_FLAG_HANDOFF: set by a first waiter that has waited past the timeout; the lock is then its own.
            bool handoff = releasedAt - since > RwsemWaitTimeoutNs;
            if (Class == LockClass.Ptl || handoff || !task.Waiter.Suspended)
            {
                if (handoff && Class != LockClass.Ptl) Handoffs++;
                _waiters.Dequeue();
                GrantWrite(task, grantAt, contended: true, requestedAt: since);
                task.Waiter.Wake(grantAt);
                return;
            }
            _wokenWriter = task;
            _wokenWriterAt = grantAt;
            task.Waiter.WakeToTryLock(grantAt, this);
            return;
        }
        // The reader phase: one pass over the queue, readers out (granted), everyone else back in order.
        int n = _waiters.Count, woken = 0;
        for (int i = 0; i < n; i++)
        {
            var w = _waiters.Dequeue();
            if (w.Mode == LockMode.Read && woken < MaxReadersWakeup)
            {
                woken++;
                GrantRead(w.Task, grantAt, contended: true, requestedAt: w.Since);
                w.Task.Waiter.Wake(grantAt);
            }
            else
            {
                _waiters.Enqueue(w);
            }
        }
    }

    private void GrantRead(EmuTask t, long at, bool contended, long requestedAt)
    {
        (_readers ??= new(2)).Add((t, at));
        _readCount++;
        t.Held.Add(new HeldLock(this, LockMode.Read));
        Account(t, LockMode.Read, contended, at - requestedAt);
    }

    private void GrantWrite(EmuTask t, long at, bool contended, long requestedAt)
    {
        _writer = t;
        _writerSince = at;
        t.Held.Add(new HeldLock(this, LockMode.Write));
        Account(t, LockMode.Write, contended, at - requestedAt);
    }

    private void Account(EmuTask t, LockMode mode, bool contended, long waited)
    {
        if (Token) return;
        var s = _m.LockStats[Class, mode];
        s.Acquisitions++;
        if (contended)
        {
            s.Contentions++;
            s.Wait.Record(waited);
        }
        _m.Events.Record(t, EventKind.Lock, Class, mode, waited);
        if (!t.LockEventsMuted) _m.Observer?.OnLockAcquired(t, this, mode, waited);
    }

    private void RemoveHeld(EmuTask t, LockMode mode)
    {
        for (int i = t.Held.Count - 1; i >= 0; i--)
        {
            if (t.Held[i].Mode == mode && ReferenceEquals(t.Held[i].Lock, this))
            {
                t.Held.RemoveAt(i);
                return;
            }
        }
    }

    /// <summary>"class name", made once: a trace's lock spans carry it.</summary>
    public string Describe() => _description ??= $"{Class.Name()} {Name}";

    private string? _description;

    /// <summary>The read holders, for reports.</summary>
    public string HolderList() => _readers is { Count: > 0 } r ? string.Join(", ", r.Select(h => h.Task.ToString())) : "nobody";

    public void AddHolders(List<EmuTask> into)
    {
        if (_writer != null) into.Add(_writer);
        if (_readers is null) return;
        foreach (var r in _readers) into.Add(r.Task);
    }

    public override string ToString() => Describe();
}

/// <summary>Awaitable for a possible sleep: default = did not sleep.</summary>
public readonly struct SleepAwaitable : ICriticalNotifyCompletion
{
    private readonly Waiter? _w;
    internal SleepAwaitable(Waiter w) => _w = w;
    public SleepAwaitable GetAwaiter() => this;
    public bool IsCompleted => _w is null || _w.IsCompleted;
    public bool Slept => _w is not null;
    public void GetResult() => _w?.GetResult();
    public void OnCompleted(Action continuation) => _w!.UnsafeOnCompleted(continuation);
    public void UnsafeOnCompleted(Action continuation) => _w!.UnsafeOnCompleted(continuation);
}
