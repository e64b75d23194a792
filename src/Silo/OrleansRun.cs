using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Silo;

/// <summary>
/// Runs a workload on the orleans engine: configures the machine grain, starts every CPU grain, follows progress
/// until every task is done, and merges the counters of all grains into the same <see cref="RunResult"/> the sim
/// engine gives.
/// </summary>
public static class OrleansRun
{
    /// <summary>
    /// Progress callback: (tasks done, tasks, ops and faults so far, max emulated ns). A run that cannot go on — the
    /// cluster's membership declares a silo of the run dead, the machine grain loses its state, a task fails, or no CPU
    /// makes progress for <paramref name="stallTimeout"/> — ends as "aborted" with the reason and the counters the
    /// surviving grains give, instead of throwing.
    /// </summary>
    /// <param name="quantumNs">The skew bound between CPUs in emulated ns (0: lax).</param>
    /// <param name="nodeSilos">The machine file's placement map (<see cref="Grains.Placement.PlacementMap.SiloOfNode"/>), or null for the even spread.</param>
    /// <param name="maxSkew">Under a quantum: given the largest clock skew the time keepers measured (emulated ns) once the run ends.</param>
    /// <param name="tracing">Record spans in the grains, which hand them to it during the run (null: no tracing).</param>
    public static async Task<RunResult> Run(IGrainFactory grains, SimRunOptions o, Action<RunStatus>? progress = null,
        TimeSpan? stallTimeout = null, long quantumNs = 0, int[]? nodeSilos = null, Action<long>? maxSkew = null, OrleansTraceCollector? tracing = null)
    {
        var workload = Workloads.Create(o.Workload, o.Params); // validates name and parameters before anything starts
        int tasks = o.Tasks ?? o.Machine.Cpus;
        if (tasks < 1 || tasks > o.Machine.Cpus)
            throw new KernelConfigException("tasks", tasks, $"must be in 1..{o.Machine.Cpus} (one task per CPU)");
        if (o.OpsPerTask < 1)
            throw new KernelConfigException("ops", o.OpsPerTask, "must be at least 1");
        if (workload.Forks)
            throw new KernelConfigException("workload", o.Workload, "it forks, and fork runs on the sim engine only: the grains have no fork path");
        foreach (var bug in o.Bugs ?? [])
        {
            new Kernel.BugSwitches().Set(bug); // an unknown name fails here, before any grain exists
            if (Kernel.BugSwitches.SimOnly.Contains(bug))
                throw new KernelConfigException("bugs", bug, "its path exists under the sim engine only");
        }
        if (o.Script is null)
            workload.CheckFits(new WorkloadContext(o.Machine, tasks, o.Seed));
        var sw = Stopwatch.StartNew();
        string run = $"run-{Guid.NewGuid():N}";
        var config = new RunConfig
        {
            RunId = run,
            MachineJson = MachineJson.Serialize(o.Machine),
            Sanitizer = o.Sanitizer,
            Workload = o.Workload,
            Params = o.Params?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new(),
            Seed = o.Seed,
            OpsPerTask = o.OpsPerTask,
            Tasks = tasks,
            EmulatedNsLimit = o.EmulatedNs ?? 0,
            QuantumNs = quantumNs,
            NodeSilos = nodeSilos,
            Script = o.Script?.ToDictionary(kv => kv.Key, kv => kv.Value.Select(OpMessages.From).ToArray()),
            Delays = o.Delays?.ToDictionary(kv => GrainScheduler.DelayKey(kv.Key.Cpu, kv.Key.Site), kv => kv.Value),
            Tracing = tracing?.Attach(grains),
            Bugs = o.Bugs is { Count: > 0 } bugs ? [.. bugs] : null,
        };
        var machine = grains.GetGrain<IMachineGrain>(run);
        var silos = await RunSilos.Of(grains);
        await machine.Configure(config);
        await silos.Watching(machine.Start());
        var stall = stallTimeout ?? DefaultStall;
        var lastChange = Stopwatch.StartNew();
        (long Ops, long Faults, int Done) last = (-1, -1, -1);
        RunStatus? status = null;
        RunStop? stopped = null;
        string? deadlock = null;
        string? failure = null; // the run cannot go on (a silo was lost, no progress, a task failed)
        while (true)
        {
            await Task.Delay(Poll, CancellationToken.None);
            if (await silos.Refresh() is { } lost)
            {
                failure = lost;
                break;
            }
            try
            {
                if (stopped is null && (stopped = o.Stop?.Invoke()) != null)
                {
                    await silos.Watching(machine.Stop());
                    lastChange.Restart();
                }
                status = await silos.Watching(machine.Status());
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // A call that failed: only the membership says whether the cluster lost part of the run. A call from an
                // external client that timed out (its gateway was slow) is tried again.
                if (await silos.Refresh(now: true) is { } gone)
                {
                    failure = gone;
                    break;
                }
                if (e is SiloUnavailableException)
                {
                    failure = $"the machine grain's silo became unavailable: {FirstLine(e.Message)}";
                    break;
                }
                continue;
            }
            progress?.Invoke(status);
            // A task that failed or a machine grain without its state may be what a lost silo left behind: name the
            // cause the membership gives, if it gives one.
            if ((status.Tasks != tasks || status.Error != null) && await silos.Refresh(now: true) is { } cause)
            {
                failure = cause;
                break;
            }
            if (status.Tasks != tasks)
            {
                // The machine grain answered without the run's configuration: it was activated anew (its silo was lost).
                failure = $"the machine grain lost its state (its silo failed?): it reports {status.Tasks} tasks, the run has {tasks}";
                break;
            }
            if (status.Error != null)
            {
                failure = "a task failed: " + status.Error;
                break;
            }
            if (status.Deadlock != null)
            {
                deadlock = status.Deadlock;
                failure = "emulated deadlock: " + status.Deadlock;
                break;
            }
            if (status.Done >= status.Tasks) break;
            if ((status.Ops, status.Faults, status.Done) != last)
            {
                last = (status.Ops, status.Faults, status.Done);
                lastChange.Restart();
            }
            else if (lastChange.Elapsed > stall)
            {
                // No CPU began an op, entered a fault or ended its task in all that time, and every silo is alive.
                string what;
                try { what = await silos.Watching(machine.DescribeStall()); }
                catch (Exception e) when (e is not OutOfMemoryException) { what = $"({e.GetType().Name} while asking which)"; }
                failure = $"no progress for {stall.TotalSeconds:F0} s: {status.Done} of {status.Tasks} tasks done, {status.Ops:N0} ops, {status.Faults:N0} faults; {what}";
                break;
            }
        }
        if (failure != null)
        {
            // Stop what still runs; a CPU whose silo is gone cannot be reached and need not be.
            try { await silos.Watching(machine.Stop()); } catch (Exception e) when (e is not OutOfMemoryException) { }
        }
        // The machine merges every grain's counters along the topology, without a time bound on any grain: one is lost
        // only when Orleans fails the call to it because its silo was declared dead. The call to the machine is made again
        // if a silo is lost while it is pending or it fails (a client may have sent it through a lost silo's gateway).
        var stats = new StatsMessage();
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                stats = await silos.Watching(machine.Collect());
                break;
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (attempt < 3 && e is not SiloUnavailableException)
                {
                    await Task.Delay(500, CancellationToken.None);
                    failure ??= silos.Lost;
                    continue;
                }
                failure = (failure is null ? "" : failure + "; ") + $"no counters could be read ({e.GetType().Name}: {FirstLine(e.Message)})";
                break;
            }
        }
        // A run that failed: a grain that answered from a fresh activation lost its state with its silo (or was never used).
        var missing = failure is null ? stats.Lost : [.. stats.Lost, .. stats.Fresh.Select(g => $"{g} (a fresh activation answered: its state was lost with its silo, or it was never used)")];
        if (missing.Count > 0)
        {
            // What the counters leave out; a run that completed yet lost grains did not really complete.
            string lost = $"partial counters: {missing.Count} grain(s) could not be read: {string.Join(", ", missing.Take(12))}{(missing.Count > 12 ? ", …" : "")}";
            failure = failure is null ? lost : failure + "; " + lost;
        }
        if (quantumNs > 0) maxSkew?.Invoke(stats.MaxSkewNs);
        tracing?.Complete(stats, grains);
        var m = StatsCodec.ToMachine(o.Machine, o.Sanitizer, stats);
        if (deadlock != null)
            m.Sanitizer.Absorb([new Kernel.Sanitizer.Violation("DEADLOCK", o.Machine.Policy.Name(), "machine", -1, null, null, stats.MaxClock, deadlock, [])],
                new Dictionary<string, long> { ["DEADLOCK"] = 1 });
        var result = Result(m, o, tasks, stats, sw.Elapsed, failure != null || stopped is { Aborted: true } ? "aborted" : "completed", failure ?? stopped?.Reason);
        result.LostGrains = missing;
        if (quantumNs > 0)
        {
            result.Skew = (quantumNs, stats.MaxSkewNs);
            result.QuantumSyncs = (stats.QuantumSyncs, stats.LookaheadGrants);
        }
        return result;
    }

    /// <summary>A run's result from the counters its grains gave back (merged into <paramref name="m"/>), as either entry reports it.</summary>
    internal static RunResult Result(Kernel.EmuMachine m, SimRunOptions o, int tasks, StatsMessage stats, TimeSpan host, string status = "completed", string? reason = null) => new()
    {
        Machine = m,
        Options = o,
        Engine = "orleans",
        Tasks = tasks,
        PerTask = [new TaskCounters { Ops = stats.Ops, Accesses = stats.Accesses, Sigsegv = stats.Sigsegv, Sigbus = stats.Sigbus }],
        EmulatedNs = stats.MaxClock,
        HostSeconds = host.TotalSeconds,
        Stalled = stats.Stalled,
        Status = status,
        Reason = reason,
    };

    /// <summary>How often the client asks the machine how far the run got.</summary>
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How long a run may go without any CPU beginning an op, entering a fault or ending its task, while every silo is
    /// alive, before it is aborted as stalled (an emulated deadlock the wait-for graph sees ends it at once instead).
    /// </summary>
    public static readonly TimeSpan DefaultStall = TimeSpan.FromSeconds(60);

    private static string FirstLine(string s)
    {
        int nl = s.IndexOf('\n', StringComparison.Ordinal);
        return (nl < 0 ? s : s[..nl]).Trim();
    }
}
