using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Kernel.Sim;

/// <summary>A workload run under the sim engine.</summary>
public sealed record SimRunOptions
{
    public required MachineSpec Machine { get; init; }
    public string Workload { get; init; } = "page-fault1";
    public IReadOnlyDictionary<string, string>? Params { get; init; }
    public long Seed { get; init; } = 1;
    /// <summary>Ops each task runs (an access is one op).</summary>
    public long OpsPerTask { get; init; } = 10_000;
    /// <summary>Stop tasks once their clock passes this (emulated ns); null = no limit.</summary>
    public long? EmulatedNs { get; init; }
    /// <summary>Tasks (threads, one per CPU from CPU 0); null = every CPU.</summary>
    public int? Tasks { get; init; }
    public bool Sanitizer { get; init; } = true;
    public Exploration? Exploration { get; init; }
    /// <summary>Historical bugs switched back in (<see cref="BugSwitches.Names"/>), PROTOCOL.md §8.</summary>
    public IReadOnlyList<string>? Bugs { get; init; }
    public bool KeepEventLog { get; init; }
    /// <summary>
    /// Let tasks pass sync points ahead of others that provably cannot touch what they touch (<see cref="Sim.RunAhead"/>):
    /// same results, fewer engine round trips. Off under exploration, whose random draws follow the host order.
    /// </summary>
    public bool RunAhead { get; init; } = true;
    /// <summary>Telemetry hooks (spans, metrics) for this run.</summary>
    public IKernelObserver? Observer { get; init; }
    /// <summary>Explicit op streams by task index, instead of the workload's (scripted scenarios; the workload still names the run).</summary>
    public IReadOnlyDictionary<int, IReadOnlyList<Op>>? Script { get; init; }
    /// <summary>Scripted preemption delays: (CPU, site) → emulated ns (a long copy, a preempted waiter).</summary>
    public IReadOnlyDictionary<(int Cpu, PreemptSite Site), long>? Delays { get; init; }
    /// <summary>Called every few thousand ops with the machine and the latest emulated time (progress displays).</summary>
    public Action<EmuMachine, long>? Progress { get; init; }
    /// <summary>Asked before each op: non-null stops every task after its current op (Ctrl-C, --duration).</summary>
    public Func<RunStop?>? Stop { get; init; }
}

/// <summary>Why a run stopped early: a time limit reached (the run is complete as asked) or an abort (Ctrl-C, a failure).</summary>
public sealed record RunStop(bool Aborted, string Reason);

/// <summary>What a run produced, under either engine: the (merged) kernel counters and where the run ended.</summary>
public sealed class RunResult
{
    /// <summary>The machine's counters, lock statistics, histograms, frames and sanitizer verdict (merged over grains under orleans).</summary>
    public required EmuMachine Machine { get; init; }
    public required SimRunOptions Options { get; init; }
    public required IReadOnlyList<TaskCounters> PerTask { get; init; }
    public string Engine { get; init; } = "sim";
    /// <summary>Tasks (threads) that ran.</summary>
    public int Tasks { get; init; }
    public long EmulatedNs { get; init; }
    public double HostSeconds { get; init; }
    public ulong EventHash { get; init; }
    public long EventCount { get; init; }
    /// <summary>Resumptions the sim engine ran (task starts, yields, wake-ups): its cost driver; 0 under orleans.</summary>
    public long EngineEvents { get; init; }
    /// <summary>Run-ahead stretches the sim engine granted (<see cref="Sim.RunAhead.Grants"/>); null when it ran exact.</summary>
    public long? RunAheadGrants { get; init; }
    public List<EmuEvent>? Events { get; init; }
    public IReadOnlyList<string> Stalled { get; init; } = [];
    /// <summary>"completed", or "aborted" with <see cref="Reason"/>.</summary>
    public string Status { get; init; } = "completed";
    public string? Reason { get; init; }
    /// <summary>Orleans: every grain whose counters the results lack (its silo was lost), named as in <see cref="Reason"/>.</summary>
    public IReadOnlyList<string> LostGrains { get; set; } = [];
    /// <summary>What tracing wrote and what it did not (when tracing).</summary>
    public TraceCounts? Trace { get; set; }
    /// <summary>Under an orleans quantum: the bound and the largest clock skew the time keepers measured, emulated ns.</summary>
    public (long QuantumNs, long MaxSkewNs)? Skew { get; set; }
    /// <summary>Under an orleans quantum: the CPUs' syncs with their time keepers, and those that let a CPU run past the quantum (its claim cleared).</summary>
    public (long Syncs, long LookaheadGrants)? QuantumSyncs { get; set; }
    /// <summary>Grain calls made (orleans engine): total and those that crossed silos.</summary>
    public (long Total, long CrossSilo)? GrainCalls { get; set; }
    public long Ops => PerTask.Sum(p => p.Ops);
    public long Accesses => PerTask.Sum(p => p.Accesses);
    public long Signals => PerTask.Sum(p => p.Sigsegv + p.Sigbus);
}

/// <summary>Runs a named workload on a machine under the sim engine: one task per CPU, all threads of one process.</summary>
public static class SimRun
{
    public static RunResult Run(SimRunOptions o)
    {
        var workload = Workloads.Workloads.Create(o.Workload, o.Params, exploring: o.Exploration != null);
        int tasks = o.Tasks ?? o.Machine.Cpus;
        if (tasks < 1 || tasks > o.Machine.Cpus)
            throw new KernelConfigException("tasks", tasks, $"must be in 1..{o.Machine.Cpus} (one task per CPU)");
        if (o.OpsPerTask < 1)
            throw new KernelConfigException("ops", o.OpsPerTask, "must be at least 1");
        var sw = Stopwatch.StartNew();
        var h = new SimHarness(o.Machine, o.Seed, o.Sanitizer, o.Exploration);
        foreach (var bug in o.Bugs ?? [])
            h.Machine.Bugs.Set(bug);
        if (o.KeepEventLog) h.Machine.Events.Full = new List<EmuEvent>();
        h.Machine.Observer = o.Observer;
        var ctx = new WorkloadContext(o.Machine, tasks, o.Seed);
        if (o.Script is null) workload.CheckFits(ctx);
        var files = workload.Files(ctx).Select(f => h.Machine.CreateFile(f.Name, f.DiskBacked)).ToList();
        var mm = h.Machine.CreateMm();
        var barrier = new TaskBarrier(tasks);
        // Exploration draws from one random source at every preemption point and tie, in host order: run-ahead would
        // change which draw each point gets. Scripted delays are fixed per CPU and site, so they keep it.
        var runAhead = o.RunAhead && o.Exploration is not { DrawsAtRandom: true } ? new RunAhead(h.Machine, mm) : null;
        h.Engine.RunAhead = runAhead;
        // Ops read ahead per task: the further a task sees, the further others may run ahead of it (each op it will run
        // takes a few ns at least). 2,048 ops (80 KiB) keep the buffer off the large-object heap, whose allocations
        // bring full collections; fewer per task on big machines, about 5 MB in all.
        int window = Math.Clamp(131_072 / tasks, 64, 2_048);
        var counters = new List<TaskCounters>();
        long limit = o.EmulatedNs ?? long.MaxValue;
        RunStop? stopped = null;
        long opsSinceProgress = 0;
        for (int i = 0; i < tasks; i++)
        {
            int cpu = Spread(i, o.Machine);
            var t = h.NewTask(cpu, mm);
            runAhead?.Register(t);
            if (o.Delays != null)
                foreach (var ((dcpu, site), ns) in o.Delays)
                    if (dcpu == cpu) h.Engine.ScriptedDelays[(t.Id, site)] = ns;
            var c = new TaskCounters();
            counters.Add(c);
            int index = i;
            h.Spawn(t, 0, async task =>
            {
                try
                {
                    using var stream = (o.Script is { } script ? script.GetValueOrDefault(index) ?? [] : workload.OpsFor(ctx, index, cpu)).GetEnumerator();
                    var ops = runAhead is null
                        ? new OpWindow(stream, 1, o.OpsPerTask, 0)
                        : new OpWindow(stream, window, o.OpsPerTask, runAhead.AccessMinNs, runAhead.MissMinNs, task.Tlb, o.Machine.PageShift);
                    while (task.Clock < limit && ops.MoveNext())
                    {
                        if ((stopped ??= o.Stop?.Invoke()) != null) break;
                        if (o.Progress != null && (++opsSinceProgress & 4095) == 0) o.Progress(task.Machine, task.Clock);
                        runAhead?.BeforeOp(task, ops);
                        await OpExecutor.Execute(task, ops.Current, files, barrier, c);
                    }
                }
                finally
                {
                    runAhead?.Exit(task);
                    barrier.Leave();
                }
            });
        }
        h.Run();
        h.CloseFrameAccounting();
        sw.Stop();
        return new RunResult
        {
            Machine = h.Machine,
            Options = o,
            PerTask = counters,
            Tasks = tasks,
            EmulatedNs = h.MaxClock,
            HostSeconds = sw.Elapsed.TotalSeconds,
            EventHash = h.Machine.Events.Hash,
            EventCount = h.Machine.Events.Count,
            EngineEvents = h.Engine.EventsRun,
            RunAheadGrants = runAhead?.Grants,
            Events = h.Machine.Events.Full,
            Stalled = h.Stalled,
            Status = stopped is { Aborted: true } ? "aborted" : "completed",
            Reason = stopped?.Reason,
        };
    }

    /// <summary>Task i's CPU: spread round-robin over the nodes, so n tasks use n/nodes CPUs of each node.</summary>
    public static int Spread(int i, MachineSpec m) => (i % m.Nodes) * m.CpusPerNode + (i / m.Nodes) % m.CpusPerNode;
}

/// <summary>
/// A traced run's spans: written to the trace files and export (<paramref name="Spans"/> in <paramref name="Traces"/>),
/// lost on the way (<paramref name="Dropped"/>: a full exporter, or spans that never reached the writer), left out by
/// sampling, and left out whole by the user's budget <paramref name="MaxSpans"/> (null: none).
/// </summary>
/// <param name="Files">The trace files written (a split Jaeger trace: its parts, then its index).</param>
public sealed record TraceCounts(long Spans, long Traces, long Dropped, long SampledOut, long LeftOutSpans = 0, long LeftOutTraces = 0, long? MaxSpans = null,
    IReadOnlyList<string>? Files = null);
