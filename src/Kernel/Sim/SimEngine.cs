using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Sim;

/// <summary>How the sim engine explores schedules: delays injected at preemption points, drawn from the seed.</summary>
public sealed record Exploration
{
    /// <summary>Probability of a delay at each preemption point.</summary>
    public double PreemptProbability { get; init; }
    /// <summary>Largest injected delay, emulated ns.</summary>
    public long MaxPreemptNs { get; init; } = 5_000;
    /// <summary>Break ties between events at the same emulated time randomly instead of by task.</summary>
    public bool RandomTies { get; init; }
    /// <summary>
    /// Sites where a delay is drawn more often and longer: right after a lock is dropped is where races live
    /// (the classic preemption-bounding heuristic), so exploration leans on those windows.
    /// </summary>
    public IReadOnlyDictionary<PreemptSite, (double Probability, long MaxNs)> Hot { get; init; } =
        new Dictionary<PreemptSite, (double, long)>();

    /// <summary>Delays are injected at preemption points (a probability, or hot sites).</summary>
    public bool InjectsDelays => PreemptProbability > 0 || Hot.Count > 0;
    /// <summary>Anything is drawn from the engine's random source, in host order (delays or ties).</summary>
    public bool DrawsAtRandom => InjectsDelays || RandomTies;

    public static Exploration None { get; } = new();
    public static Exploration Default { get; } = new()
    {
        PreemptProbability = 0.03,
        MaxPreemptNs = 50_000,
        RandomTies = true,
        Hot = new Dictionary<PreemptSite, (double, long)> { [PreemptSite.UnlockToPteMapLock] = (0.5, 500_000) },
    };
}

/// <summary>
/// The deterministic discrete-event engine: one thread, events ordered by (emulated time, task), every random choice
/// drawn from one seeded source. A task runs on without yielding while its clock is not ahead of the next event, so a
/// lone CPU never pays for the queue; with <see cref="RunAhead"/> it also runs on past tasks that provably cannot touch
/// what it touches. Same seed ⇒ same history on every task ⇒ same event-log hash and counters, with or without it.
/// </summary>
public sealed class SimEngine : IEmuScheduler
{
    private readonly EventQueue _queue = new();
    private readonly Random _rng;
    private long _seq;
    /// <summary>The exploration injects delays at preemption points (a probability, or hot sites).</summary>
    private readonly bool _explores;

    public Exploration Exploration { get; }
    /// <summary>Scripted delays for tests: (task id, site) → ns, applied before any random ones.</summary>
    public Dictionary<(int Task, PreemptSite Site), long> ScriptedDelays { get; } = new();
    public long Now { get; private set; }
    public long EventsRun { get; private set; }

    public SimEngine(long seed, Exploration? exploration = null)
    {
        _rng = new Random(unchecked((int)(seed ^ (seed >> 32))));
        Exploration = exploration ?? Exploration.None;
        _explores = Exploration.InjectsDelays;
    }

    /// <summary>Conservative lookahead for a workload run (null: every task waits its turn at every sync point).</summary>
    public RunAhead? RunAhead { get; set; }

    /// <summary>
    /// Events at one emulated ns run in task order (lowest id first), not in the order they were queued: that order
    /// depends on how far each task got on the host, which run-ahead changes, and results must not. Exploration
    /// draws ties at random instead.
    /// </summary>
    public bool MustYield(EmuTask task, bool exact)
    {
        if (!_queue.TryPeek(out long head, out long headTie) || task.Clock < head)
            return false;
        if (task.Clock == head && (Exploration.RandomTies || (headTie >> 32) > task.Id))
            return false;
        if (exact || RunAhead is null || !RunAhead.May(task))
            return true;
        task.AheadPass = true;
        return false;
    }

    public void Resume(EmuTask task, long at, Action continuation) => Enqueue(at, task.Id, continuation);

    public void Sleeping(EmuTask task)
    {
    }

    public void Woken(EmuTask task, long at, Action? continuation)
    {
        if (continuation != null) Enqueue(at, task.Id, continuation);
    }

    /// <summary>Run <paramref name="action"/> at <paramref name="at"/> for task <paramref name="taskId"/> (ties by task).</summary>
    public void Schedule(long at, int taskId, Action action) => Enqueue(at, taskId, action);

    private void Enqueue(long at, int taskId, Action action)
    {
        long tie = Exploration.RandomTies ? ((long)_rng.Next() << 32) | (uint)_seq : ((long)taskId << 32) | (uint)_seq;
        _seq++;
        _queue.Enqueue(at, tie, action);
    }

    public long PreemptionDelay(EmuTask task, PreemptSite site)
    {
        // Every fault passes two preemption points: without exploration or scripted delays, no lookups.
        if (!_explores && ScriptedDelays.Count == 0)
            return 0;
        if (ScriptedDelays.TryGetValue((task.Id, site), out long ns))
            return ns;
        var (p, max) = Exploration.Hot.TryGetValue(site, out var hot) ? hot : (Exploration.PreemptProbability, Exploration.MaxPreemptNs);
        if (p > 0 && _rng.NextDouble() < p)
            return 1 + _rng.NextInt64(max);
        return 0;
    }

    /// <summary>Run events in emulated-time order until none is left or <paramref name="stop"/> says so.</summary>
    public void Run(Func<bool>? stop = null)
    {
        // Nothing in the kernel core reads an AsyncLocal, and every continuation runs here on this thread: without an
        // ExecutionContext to capture, each resumed async frame skips ExecutionContext.RunInternal (~10 % at 8 CPUs).
        using var noFlow = ExecutionContext.IsFlowSuppressed() ? default : ExecutionContext.SuppressFlow();
        // The engine owns this thread while it runs: a caller's SynchronizationContext (a test runner's, a UI's) would
        // otherwise receive the continuations of ValueTasks backed by an IValueTaskSource (pooled async methods) and
        // run them outside the event order, or never.
        var callerContext = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            while (_queue.TryDequeue(out var action, out long time))
            {
                if (time > Now) Now = time;
                EventsRun++;
                action();
                if (stop != null && stop()) break;
            }
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(callerContext);
        }
    }

    public int Pending => _queue.Count;
}
