using DistEmu.Abstractions;
using DistEmu.Kernel.Sched;

namespace DistEmu.Grains.Support;

/// <summary>
/// The orleans engine's side of the kernel's engine port. Without a quantum, CPUs run lax (Graphite's term): a task
/// never waits for others' time. With one, a task that passes its horizon asks its node's time keeper and goes on when
/// the slowest running CPU is within the quantum (or, between exact sync points, while the lookahead bound covers it and
/// its claim is cleared: see <see cref="CpuLookahead"/>); a task going to sleep on a lock or folio tells that time keeper, so
/// it holds back no one. The task's node picks the keeper (a VMA grain's stand-in for a CPU of another node reports
/// to that CPU's node). A woken task resumes as a new turn of the grain that owns the lock (never inline in the
/// waker's turn), at the emulated time the kernel core computed.
/// </summary>
public sealed class GrainScheduler : IEmuScheduler
{
    private readonly TaskScheduler _activation;
    private readonly Func<int, INodeTimeKeeperGrain>? _timeKeeper;
    private readonly long _salt = (long)Random.Shared.Next() << 32;
    private long _nextToken;
    private readonly Dictionary<EmuTask, long> _sleeping = new();
    private readonly IReadOnlyDictionary<string, long>? _delays;
    private readonly IWaitGraphGrain? _waitGraph;

    /// <summary>Call during activation: captures the activation's task scheduler.</summary>
    /// <param name="timeKeeper">The time keeper of a node (null: CPUs run lax).</param>
    public GrainScheduler(Func<int, INodeTimeKeeperGrain>? timeKeeper, IReadOnlyDictionary<string, long>? delays = null, IWaitGraphGrain? waitGraph = null)
    {
        _activation = TaskScheduler.Current;
        _timeKeeper = timeKeeper;
        _delays = delays;
        _waitGraph = waitGraph;
    }

    public static string DelayKey(int cpu, PreemptSite site) => $"{cpu}/{site}";

    /// <summary>Only scripted delays: schedule exploration is the sim engine's.</summary>
    public long PreemptionDelay(EmuTask task, PreemptSite site) =>
        _delays != null && _delays.TryGetValue(DelayKey(task.Cpu, site), out long ns) ? ns : 0;

    public bool Bounded => _timeKeeper != null;

    /// <summary>The CPU grain's own task's lookahead standing, sent with its syncs (null: a grain of stand-ins, or lax).</summary>
    public CpuLookahead? Lookahead { get; set; }

    /// <summary>Whether the yield <see cref="MustYield"/> last asked for is at an exact sync point (Resume follows it at once).</summary>
    private bool _yieldExact;

    public bool MustYield(EmuTask task, bool exact)
    {
        if (_timeKeeper is null || task.WithinHorizon) return false;
        _yieldExact = exact;
        return true;
    }

    public void Resume(EmuTask task, long at, Action continuation)
    {
        if (_timeKeeper is null)
            Post(continuation);
        else
            _ = SyncThen(task, continuation, _yieldExact, allowed: Math.Max(task.Allowed, Math.Max(task.Horizon, task.FreeUntil)));
    }

    private async Task SyncThen(EmuTask task, Action continuation, bool exact, long allowed)
    {
        bool own = Lookahead is { } la && la.Task == task;
        var report = own ? Lookahead!.Report() : OutOfRun(task);
        // A grant follows the claim the CPU reports with it. A stand-in running part of a CPU's op elsewhere (a VMA
        // grain) keeps the grant its caller passed and waits only for the horizon: the claim the time keeper holds may
        // be older than the one its CPU is already in.
        var grant = await KeeperOf(task).Sync(task.Cpu, task.Clock, exact || !own, report, allowed);
        (task.Horizon, task.HorizonRank) = (grant.Horizon, grant.HorizonRank);
        task.Allowed = Math.Max(task.Allowed, Math.Max(allowed, grant.Horizon));
        if (own) task.FreeUntil = grant.FreeUntil;
        continuation();
    }

    /// <summary>
    /// A stand-in's standing for its CPU, when that CPU is outside a run (a system call, a fault's mmap_lock path): its
    /// end is its clock, which moves with the stand-in's work. Without it the CPU's end would stay where its CPU grain
    /// last reported it, and hold every cleared CPU back for the whole call (a munmap's zap). In a run, nothing: the
    /// CPU grain reports its run's end and claim itself.
    /// </summary>
    private static LookaheadReport? OutOfRun(EmuTask task) =>
        task.Cpu >= 0 && task.ClaimVersion >= 0 && !task.InRun
            ? new LookaheadReport { End = task.Clock, Claim = new ClaimUpdate { Cpu = task.Cpu, Version = task.ClaimVersion, InRun = false, Files = [] } }
            : null;

    /// <summary>
    /// A sleep starts: the time keeper leaves the CPU out of the skew bound, and the machine's wait-for graph gets an
    /// edge to the CPUs holding what it sleeps on (a cycle across grains is an emulated deadlock).
    /// </summary>
    public void Sleeping(EmuTask task)
    {
        if (_timeKeeper is null && _waitGraph is null) return;
        long token = _salt | ++_nextToken;
        _sleeping[task] = token;
        if (_timeKeeper != null)
            _ = KeeperOf(task).Block(task.Cpu, token);
        if (_waitGraph != null && task.WaitingOn is Kernel.Locking.IWaitTarget target)
        {
            var holders = new List<EmuTask>();
            target.AddHolders(holders);
            _ = _waitGraph.Wait(task.Cpu, token, target.Describe(), holders.Select(h => h.Cpu).Where(c => c >= 0).Distinct().ToArray());
        }
    }

    public void Woken(EmuTask task, long at, Action? continuation)
    {
        if (_sleeping.Remove(task, out long token))
        {
            if (_timeKeeper != null) _ = KeeperOf(task).Unblock(task.Cpu, token, at);
            if (_waitGraph != null) _ = _waitGraph.Woke(task.Cpu, token);
        }
        if (continuation is null) return;
        // The waker's release may lie far ahead of the slowest CPU (a munmap's zap is one hold): a woken task that ran on
        // at once would act at that time before CPUs behind it act earlier (a writer spinning in the window before the
        // woken writer runs, a reader queueing behind a writer) — the sim engine runs it at its time, so under a quantum
        // it first waits, as at an exact sync point, for the others to come within the quantum.
        if (_timeKeeper != null && !task.WithinHorizon)
            _ = SyncThen(task, continuation, exact: true, allowed: task.Clock);
        else
            Post(continuation);
    }

    /// <summary>A wait that is not a kernel lock (a barrier): the CPU sleeps for the time keeper meanwhile.</summary>
    public async Task<long> SleepWhile(EmuTask task, Func<Task<long>> wait)
    {
        Sleeping(task);
        long at = await wait();
        task.ReturnedAt(at);
        Woken(task, task.Clock, null);
        return at;
    }

    private INodeTimeKeeperGrain KeeperOf(EmuTask task) => _timeKeeper!(Math.Max(0, task.Node));

    private void Post(Action continuation) =>
        _ = Task.Factory.StartNew(continuation, CancellationToken.None, TaskCreationOptions.None, _activation);
}
