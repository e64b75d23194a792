using DistEmu.Abstractions;
using DistEmu.Kernel;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Telemetry;

namespace DistEmu.Grains.Support;

/// <summary>
/// A grain's share of the kernel: its own EmuMachine context (counters, lock statistics, sanitizer, folios), frames
/// and shootdowns through the grain ports, and one stand-in task per calling CPU (the kernel's `current`).
/// </summary>
public sealed class KernelHost
{
    private readonly Dictionary<int, EmuTask> _tasks = new();

    /// <summary>
    /// The run's shared description. Held here, strongly: the silo's <see cref="RunCatalog"/> holds runs only weakly, so
    /// while any grain of the run lives on this silo its description must be reachable from that grain, or a collection
    /// would make the next grain read and parse the run again (and hold a copy of its own).
    /// </summary>
    public RunDescription Run { get; }
    public RunConfig Config => Run.Config;
    public MachineSpec Spec => Run.Spec;
    public EmuMachine Machine { get; }
    public GrainScheduler Scheduler { get; }
    public GrainFramePort Frames { get; }
    /// <summary>The spans this grain records when the run is traced (null otherwise).</summary>
    public SpanRecorder? Recorder { get; }
    public GrainSpans? Spans { get; }

    /// <param name="run">The run's configuration and spec, shared with every other grain of the run on this silo (<see cref="RunCatalog"/>).</param>
    public KernelHost(RunDescription run, IGrainFactory grains, string key = "")
    {
        Run = run;
        var config = run.Config;
        Machine = new EmuMachine(Spec, config.Sanitizer, ownsFrames: false);
        foreach (var bug in config.Bugs ?? [])
            Machine.Bugs.Set(bug);
        Scheduler = new GrainScheduler(config.QuantumNs > 0 ? node => grains.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(config.RunId, node)) : null, config.Delays,
            grains.GetGrain<IWaitGraphGrain>(config.RunId));
        Frames = new GrainFramePort(grains, config.RunId, Machine, config.Tasks, run.HugePagesPossible);
        Machine.FramePort = Frames;
        Machine.TlbPort = new GrainTlbPort(grains, config.RunId, Spec);
        if (config.Tracing is { } tracing)
        {
            // One recorder per grain, its span ids seeded apart from every other grain's by the grain's key.
            Spans = new GrainSpans(tracing.Collector, Math.Max(1, tracing.BatchSpans));
            Recorder = new SpanRecorder(Spans, new TracingOptions
            {
                SampleRatio = tracing.SampleRatio,
                ContendedNs = tracing.ContendedNs >= 0 ? tracing.ContendedNs : null,
                Policy = Machine.Policy.Name(),
                Seed = config.Seed ^ (long)Kernel.StableHash.Of(key),
                ChildrenElsewhere = true,
                // Host clock: wall time, so that grains on other silos share the client's timeline.
                HostClock = tracing.HostClock ? () => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100 - tracing.EpochUnixNs : null,
                Live = tracing.LiveRoots ? new System.Diagnostics.ActivitySource(TracingConfig.LiveSourceName) : null,
            });
            Machine.Observer = Recorder;
        }
    }

    /// <summary>The recorder's counts into a grain's stats (after <see cref="DrainSpans"/>: the spans went to the collector).</summary>
    public void ExportSpans(StatsMessage msg)
    {
        if (Recorder is null || Spans is null) return;
        msg.SpanCounts = [Recorder.Spans, Recorder.SampledOut, Spans.Dropped];
    }

    /// <summary>A flush point (the end of a grain call or of a CPU's op): a full batch of spans goes to the run's collector.</summary>
    public Task FlushSpans() => Spans?.Flush() ?? System.Threading.Tasks.Task.CompletedTask;

    /// <summary>Every span recorded here to the run's collector, before the grain reports its counters or goes.</summary>
    public Task DrainSpans() => Spans?.Drain() ?? System.Threading.Tasks.Task.CompletedTask;

    /// <summary>The stand-in for the calling CPU, its clock moved up to the caller's.</summary>
    public EmuTask Task(Caller c)
    {
        if (!_tasks.TryGetValue(c.Cpu, out var t))
            _tasks[c.Cpu] = t = new EmuTask(Machine, c.Cpu, $"cpu{c.Cpu}", c.Cpu, c.Node, Scheduler) { TieRank = Run.TaskOf(c.Cpu) };
        if (c.Clock > t.Clock) t.Clock = c.Clock;
        (t.Horizon, t.HorizonRank) = Scheduler.Bounded ? (c.Horizon, c.HorizonRank) : (long.MaxValue, int.MaxValue);
        t.FreeUntil = Scheduler.Bounded ? c.FreeUntil : long.MinValue;
        (t.ClaimVersion, t.InRun, t.Allowed) = (c.ClaimVersion, c.InRun, c.Allowed);
        // What this call records is a child of the caller's span (the fault or system call it is part of).
        Recorder?.Adopt(t, new TraceContext(new TraceId(c.TraceHi, c.TraceLo), c.SpanId, c.Sampled));
        return t;
    }

    /// <summary>
    /// The caller of a call <paramref name="t"/> makes now: its CPU, clock, skew bound and, when traced, its span —
    /// with <paramref name="faultAhead"/>, the span of the fault the call begins ahead of the CPU (a speculative walk).
    /// </summary>
    public static Caller CallerOf(EmuTask t, bool faultAhead = false)
    {
        var caller = new Caller { Cpu = t.Cpu, Node = t.Node, Clock = t.Clock, Horizon = t.Horizon, HorizonRank = t.HorizonRank, FreeUntil = t.FreeUntil, ClaimVersion = t.ClaimVersion, InRun = t.InRun, Allowed = t.Allowed };
        if (t.Machine.Observer is SpanRecorder recorder && (faultAhead ? recorder.ReserveRoot(t) : recorder.Current(t)) is { SpanId: not 0 } span)
            (caller.TraceHi, caller.TraceLo, caller.SpanId, caller.Sampled) = (span.Trace.Hi, span.Trace.Lo, span.SpanId, span.Sampled);
        return caller;
    }

    /// <summary>The kernel host of the grain with key <paramref name="key"/>, on its run's description as this silo has it.</summary>
    public static async Task<KernelHost> For(RunCatalog runs, IGrainFactory grains, string key) =>
        new(await runs.Get(grains, GrainKeys.RunOf(key)), grains, key);
}
