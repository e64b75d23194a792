using System.Runtime.CompilerServices;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Locking;

/// <summary>
/// A reader/writer semaphore with a FIFO of waiters (kernel/locking/rwsem.c), writer-fair: once anyone waits, new
/// readers queue behind and every trylock fails. Used for mmap_lock and vm_lock; a PTL is one taken only for
/// write. Holds are emulated intervals: a grant after a wait happens at the release time plus the hand-off cost,
/// and the waiter's clock jumps there. Releasing what the caller does not hold is reported as S6 and ignored, so
/// that a buggy policy never corrupts the emulator's own state.
/// </summary>
public sealed class RwSemaphore : IWaitTarget
{
    private readonly EmuMachine _m;
    /// <summary>Read holders; allocated on the first read grant (a PTL, one per page-table page, is only ever written).</summary>
    private List<(EmuTask Task, long Since)>? _readers;
    private EmuTask? _writer;
    private long _writerSince;
    private Queue<(EmuTask Task, LockMode Mode, long Since)>? _waiters;

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
    public int ReaderCount => _readers?.Count ?? 0;
    public bool HasWaiters => _waiters is { Count: > 0 };
    public bool IsLocked => _writer != null || ReaderCount > 0;

    public bool IsReadHeldBy(EmuTask t) => ReaderIndex(t) >= 0;

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

    /// <summary>down_write: sleeps (FIFO) while anyone holds or waits.</summary>
    public SleepAwaitable AcquireWrite(EmuTask t)
    {
        if (TryWrite(t))
            return default;
        return Enqueue(t, LockMode.Write);
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
                _m.Sanitizer.BadRelease(t, this, mode,
                    _writer != null ? $"write-locked by {_writer}" : ReaderCount == 0 ? "not locked (double unlock?)" : "read-held by others only");
                return false;
            }
            if (!Token)
            {
                _m.LockStats[Class, LockMode.Read].Hold.Record(now - _readers![i].Since);
                _m.Events.Record(t, EventKind.Unlock, Class, mode, now - _readers![i].Since);
                if (!t.LockEventsMuted) _m.Observer?.OnLockReleased(t, this, mode, _readers![i].Since);
            }
            _readers!.RemoveAt(i);
        }
        RemoveHeld(t, mode);
        LastReleasedAt = now;
        WakeWaiters(now);
        return true;
    }

    /// <summary>downgrade_write: the writer becomes a reader; readers queued at the head are let in.</summary>
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
        if (!t.LockEventsMuted) _m.Observer?.OnLockAcquired(t, this, LockMode.Read, 0);
        t.Held.Add(new HeldLock(this, LockMode.Read));
        WakeWaiters(now);
    }

    private void WakeWaiters(long releasedAt)
    {
        if (_waiters is null) return;
        long grantAt = releasedAt + _m.Cost.LockHandoffNs;
        while (_waiters.Count > 0 && _writer == null)
        {
            var (task, mode, since) = _waiters.Peek();
            if (mode == LockMode.Write)
            {
                if (ReaderCount > 0) return;
                _waiters.Dequeue();
                GrantWrite(task, grantAt, contended: true, requestedAt: since);
                task.Waiter.Wake(grantAt);
                return;
            }
            _waiters.Dequeue();
            GrantRead(task, grantAt, contended: true, requestedAt: since);
            task.Waiter.Wake(grantAt);
        }
    }

    private void GrantRead(EmuTask t, long at, bool contended, long requestedAt)
    {
        (_readers ??= new(2)).Add((t, at));
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
