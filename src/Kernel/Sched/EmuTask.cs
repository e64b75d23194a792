using System.Runtime.CompilerServices;
using DistEmu.Kernel.Locking;

namespace DistEmu.Kernel.Sched;

/// <summary>
/// An emulated thread of execution with its own emulated clock: the task running on one emulated CPU, or a kernel
/// thread (the per-node page migrator). It models `current` — what the kernel means by "the caller".
/// Locks it holds are tracked here so the sanitizer can check S5, S6, S8 and S13 and find wait-for cycles.
/// </summary>
public sealed class EmuTask
{
    public int Id { get; }
    public string Name { get; }
    /// <summary>Emulated CPU it runs on, or -1 for a kernel thread.</summary>
    public int Cpu { get; }
    public int Node { get; }
    /// <summary>Emulated time in nanoseconds. Only ever grows.</summary>
    public long Clock;
    /// <summary>A slot for an observer's per-task state (saves it a lookup per event).</summary>
    public object? ObserverState { get; set; }
    /// <summary>
    /// Set by the observer while the task's current trace is left out by sampling: its lock events would be dropped, so
    /// the lock code does not make the calls (most faults of a sampled run pay nothing for tracing).
    /// </summary>
    public bool LockEventsMuted;
    /// <summary>
    /// The first sanitizer report made on this task's behalf since the tracing observer last took it ("S6: …"),
    /// wherever it was made: the sanitizer sets it, and under orleans a grain that ran part of the fault hands its note
    /// back in the reply. The observer marks the fault's trace with it.
    /// </summary>
    public string? ViolationNote;
    /// <summary>How far this task may run before it must synchronise with the others (an engine's skew bound).</summary>
    public long Horizon = long.MaxValue;
    /// <summary>
    /// With <see cref="Horizon"/>: a task at exactly that clock is within it if its <see cref="TieRank"/> is at most
    /// this (the orleans engine's ties go in task order, as the sim engine's events do).
    /// </summary>
    public int HorizonRank = int.MaxValue;
    /// <summary>The task's place among tasks at one emulated ns under the orleans engine's quantum: its task index.</summary>
    public int TieRank;

    /// <summary>Whether the task, at its clock, is within its horizon.</summary>
    public bool WithinHorizon => Clock < Horizon || (Clock == Horizon && TieRank <= HorizonRank);
    public IEmuScheduler Scheduler { get; set; }
    public EmuMachine Machine { get; }
    /// <summary>The address space this task runs in, where it is local (sim engine); null for a kernel thread.</summary>
    public Mm.MmStruct? Mm
    {
        get => _mm;
        set
        {
            _mm = value;
            if (value != null) AddressSpace ??= value.LocalPort;
        }
    }
    private Mm.MmStruct? _mm;
    /// <summary>How faults and page walks reach the address space (local objects, or grains).</summary>
    public Ports.IAddressSpacePort? AddressSpace { get; set; }
    /// <summary>The CPU's software TLB (null for a kernel thread).</summary>
    public Cpu.Tlb? Tlb => Cpu >= 0 ? _tlb ??= Machine.Tlb(Cpu) : null;
    /// <summary>
    /// Taken from the machine on the first access: a VMA or mm grain makes a task for every CPU that calls it, and those
    /// never look a translation up (8 KiB a CPU, most of such a grain's kernel state).
    /// </summary>
    private Cpu.Tlb? _tlb;
    /// <summary>The per-CPU page list frames are allocated from (local node).</summary>
    public Memory.PerCpuPages Pcp { get; }

    /// <summary>Locks currently held, in acquisition order (lockdep's held_locks).</summary>
    internal readonly List<HeldLock> Held = new(4);
    /// <summary>What the task sleeps or spins on, for wait-for cycles; null when running.</summary>
    internal object? WaitingOn;
    internal readonly Waiter Waiter;

    public EmuTask(EmuMachine machine, int id, string name, int cpu, int node, IEmuScheduler scheduler)
    {
        Machine = machine;
        Pcp = new Memory.PerCpuPages(machine.Cost.PcpBatch);
        Id = id;
        Name = name;
        Cpu = cpu;
        Node = node;
        Scheduler = scheduler;
        Waiter = new Waiter(this);
    }

    /// <summary>The clock at which the engine last let this task go on: a check at the same clock needs no yield.</summary>
    internal long SyncedClock = -1;
    /// <summary>
    /// Set by the engine when it let the task pass a sync point ahead of a task with an earlier clock (run-ahead): such a
    /// pass does not make <see cref="SyncedClock"/>, so an exact sync at the same clock still asks.
    /// </summary>
    internal bool AheadPass;
    /// <summary>
    /// The engine's run-ahead let this task pass sync points (not exact ones) while its clock is below this, without
    /// asking again; the engine lowers it whenever what it knew changes.
    /// </summary>
    public long FreeUntil = long.MinValue;
    /// <summary>
    /// The orleans engine's lookahead: the version of the claim this task's CPU stands on (-1: it keeps none) and
    /// whether that claim is a run. A stand-in running part of the CPU's op elsewhere carries them, so that its syncs
    /// tell the time keepers when the CPU is outside a run, and how far its clock got.
    /// </summary>
    public long ClaimVersion = -1;
    public bool InRun;
    /// <summary>
    /// The furthest clock the orleans engine's time keepers have let this task's CPU run to (a horizon, or a grant while
    /// its run held one): how far past it the CPU is when it next asks is the skew it reports.
    /// </summary>
    public long Allowed = long.MinValue;

    /// <summary>
    /// The task's work went on elsewhere (a call to a grain, a wake, a replay's gate) and came back at
    /// <paramref name="clock"/>: its clock moves there, and so does <see cref="Allowed"/> — whatever took it there was
    /// checked where it ran, or was a wait.
    /// </summary>
    public void ReturnedAt(long clock)
    {
        if (clock > Clock) Clock = clock;
        if (clock > Allowed) Allowed = clock;
    }
    /// <summary>Events this task logged: each is hashed with its place in the task's own sequence (<see cref="Sanitizer.EventLog"/>).</summary>
    internal long EventCount;
    /// <summary>The sim engine's run-ahead bookkeeping for this task (what it will touch, until when); null when not taking part.</summary>
    internal Sim.RunAheadClaim? Claim;

    /// <summary>
    /// Spend <paramref name="ns"/> of emulated time; yields to the engine if others must run first. Call it before
    /// touching shared state: it is what keeps every shared access in emulated-time order.
    /// </summary>
    public DelayAwaitable Delay(long ns)
    {
        Clock += ns;
        return new DelayAwaitable(this, exact: false);
    }

    /// <summary>
    /// <see cref="Delay"/> before touching state that tasks in disjoint address ranges share and whose order decides
    /// results (a node's free list): the engine never lets the task run ahead here, whatever it knows of the others.
    /// </summary>
    public DelayAwaitable DelayExact(long ns)
    {
        Clock += ns;
        return new DelayAwaitable(this, exact: true);
    }

    /// <summary>
    /// Spend <paramref name="ns"/> of emulated time without a yield: only for work on private or locked state that is
    /// followed by a <see cref="Delay"/> before the next shared access (saves an engine round trip).
    /// </summary>
    public void Advance(long ns) => Clock += ns;

    /// <summary>
    /// A preemption point: the engine may add a delay here to explore another interleaving. Without one it costs
    /// nothing: every site is followed by a <see cref="Delay"/> or sits at a clock that was just synchronised.
    /// </summary>
    public DelayAwaitable Preempt(PreemptSite site)
    {
        long d = Scheduler.PreemptionDelay(this, site);
        if (d == 0)
            return new DelayAwaitable(null, exact: false);
        Clock += d;
        Machine.Observer?.OnPreempted(this, site, Clock - d, Clock);
        return new DelayAwaitable(this, exact: false);
    }

    public bool Holds(object lockObject)
    {
        foreach (var h in Held)
            if (ReferenceEquals(h.Lock, lockObject))
                return true;
        return false;
    }

    public bool HoldsAnyPtl()
    {
        foreach (var h in Held)
            if (h.Lock is RwSemaphore { Class: LockClass.Ptl })
                return true;
        return false;
    }

    public override string ToString() => Cpu >= 0 ? $"cpu{Cpu}" : Name;
}

/// <summary>One entry of a task's held locks.</summary>
internal readonly record struct HeldLock(object Lock, LockMode Mode);

/// <summary>Awaitable returned by <see cref="EmuTask.Delay"/>: completes at once unless the engine says yield.</summary>
public readonly struct DelayAwaitable : ICriticalNotifyCompletion
{
    private readonly EmuTask? _task;
    private readonly bool _exact;
    /// <param name="task">Null: complete at once, no synchronisation.</param>
    /// <param name="exact">The engine may not let the task run ahead of anyone here.</param>
    internal DelayAwaitable(EmuTask? task, bool exact)
    {
        _task = task;
        _exact = exact;
    }
    public DelayAwaitable GetAwaiter() => this;
    public bool IsCompleted
    {
        get
        {
            var t = _task;
            if (t is null || t.Clock == t.SyncedClock)
                return true;
            if (!_exact && t.Clock < t.FreeUntil)
            {
                t.AheadPass = true;
                return true;
            }
            return !t.Scheduler.MustYield(t, _exact);
        }
    }
    public void GetResult()
    {
        if (_task is null) return;
        if (_task.AheadPass) _task.AheadPass = false;
        else _task.SyncedClock = _task.Clock;
    }
    public void OnCompleted(Action continuation) => _task!.Scheduler.Resume(_task, _task.Clock, continuation);
    public void UnsafeOnCompleted(Action continuation) => _task!.Scheduler.Resume(_task, _task.Clock, continuation);
}

/// <summary>
/// A task's single reusable sleep: a task waits on at most one thing at a time (a lock, a folio). Whoever wakes it
/// gives the emulated time of the release it waited for; the task's clock jumps there (causal, Lamport-style).
/// </summary>
public sealed class Waiter : ICriticalNotifyCompletion
{
    private readonly EmuTask _task;
    private Action? _continuation;
    private bool _woken;

    internal Waiter(EmuTask task) => _task = task;

    internal Waiter Arm()
    {
        _woken = false;
        _continuation = null;
        _task.Scheduler.Sleeping(_task);
        return this;
    }

    public Waiter GetAwaiter() => this;
    public bool IsCompleted => _woken;
    public void GetResult() => _task.WaitingOn = null;

    public void OnCompleted(Action continuation) => UnsafeOnCompleted(continuation);

    public void UnsafeOnCompleted(Action continuation)
    {
        // Woken before it suspended: the engine resumes it as any woken task (the wake was already announced).
        if (_woken)
            _task.Scheduler.Woken(_task, _task.Clock, continuation);
        else
            _continuation = continuation;
    }

    /// <summary>The task has suspended on this sleep (its continuation is parked here).</summary>
    internal bool Suspended => _continuation != null;

    /// <summary>The rwsem a woken writer runs back to (<see cref="WakeToTryLock"/>); null otherwise.</summary>
    private Locking.RwSemaphore? _tryLock;
    /// <summary>Made once per task: the event that runs the writer's rwsem_try_write_lock.</summary>
    private Action? _tryLockAction;

    /// <summary>
    /// rwsem_mark_wake waking a writer (kernel/locking/rwsem.c): unlike a reader, it is not given the lock; it runs at
    /// <paramref name="at"/> and takes it itself (rwsem_try_write_lock). If a spinning writer stole it meanwhile, it
    /// sleeps again, still first in the queue, and the code that awaited the lock goes on only once it holds it.
    /// </summary>
    internal void WakeToTryLock(long at, Locking.RwSemaphore sem)
    {
        if (_woken)
            throw new InvalidOperationException($"{_task} woken twice");
        _woken = true;
        _tryLock = sem;
        if (at > _task.Clock)
            _task.Clock = at;
        _task.Scheduler.Woken(_task, _task.Clock, _tryLockAction ??= TryLockAfterWake);
    }

    private void TryLockAfterWake()
    {
        var sem = _tryLock!;
        _tryLock = null;
        if (!sem.RwsemTryWriteLock(_task))
        {
            _woken = false;
            _task.Scheduler.Sleeping(_task);
            return;
        }
        var c = _continuation!;
        _continuation = null;
        c();
    }

    /// <summary>Wake the sleeping task at emulated time <paramref name="at"/> (its clock never goes back).</summary>
    internal void Wake(long at)
    {
        if (_woken)
            throw new InvalidOperationException($"{_task} woken twice");
        _woken = true;
        if (at > _task.Clock)
            _task.Clock = at;
        var c = _continuation;
        _continuation = null;
        _task.Scheduler.Woken(_task, _task.Clock, c);
    }
}
