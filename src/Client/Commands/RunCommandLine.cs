using System.CommandLine;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Workloads;
using DistEmu.Telemetry;
using static DistEmu.Client.OptionKinds;

namespace DistEmu.Client;

/// <summary>
/// <c>distemu run</c> and <c>distemu replay FILE</c>: their options (replay takes run's, with the trace as an argument)
/// and the <see cref="RunOptions"/> read from a parse. One instance per command: the options are its own.
/// </summary>
internal sealed class RunCommandLine
{
    private readonly Option<string?> _preset = Text("--preset", "NAME", "machine preset from presets/ (default: small)");
    private readonly Option<string?> _machine = Text("--machine", "FILE.yaml", "machine description file (same schema as presets; 'base: PRESET' to start from one; 'placement:' maps node ranges to silos, see README)");
    private readonly Option<string?> _workload = Text("--workload", "NAME", $"{string.Join(" | ", Workloads.Names)} (default: page-fault1)");
    private readonly Option<Dictionary<string, string>> _param = Params("workload parameter, repeatable (e.g. --param size_mb=4)");
    private readonly Option<string?> _policy = Text("--policy", "NAME", $"{string.Join(" | ", FaultPolicies.All.Select(p => $"{p.Name()} ({p.Release()})"))} (default: the machine's)");
    private readonly Option<string?> _engine = Choice("--engine", "orleans (default): grains on a silo started in this process; sim: the deterministic engine", "unknown engine", ["sim", "orleans"], "orleans|sim");
    private readonly Option<string?> _cluster = Text("--cluster", "URL", "orleans: run on an existing cluster instead of a silo in this process; its membership table: redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (adonet clustering); a lost silo aborts the run (partial results, exit 1)");
    private readonly Option<string?> _clusterId = Text("--cluster-id", "ID", "with --cluster: the cluster's id (default: distemu)");
    private readonly Option<string?> _serviceId = Text("--service-id", "ID", "with --cluster: the cluster's service id (default: distemu)");
    private readonly Option<long?> _seed = Long("--seed", "random seed (default: 1)");
    private readonly Option<long?> _ops = Long("--ops", $"ops per task, mmap/munmap/accesses all count (default: {Cli.DefaultOps})");
    private readonly Option<(TimeSpan Time, string Text)?> _duration = Duration("stop after T of host time (e.g. 10s, 500ms, 2m); the results are complete as of then");
    private readonly Option<string[]?> _traceFile = new("--trace-file")
    {
        HelpName = "PATH",
        Description = "write spans (emulated timeline by default): PATH.json (Jaeger JSON, opens in Jaeger UI's upload; past --trace-split traces PATH-0001.json … and PATH.index.json), PATH.perfetto.json (Chrome trace events: ui.perfetto.dev, one track per CPU, ns precision) or PATH.jsonl (OTLP JSON lines); give it again for more files (say a Jaeger and a Perfetto file of one run)",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };
    private readonly Option<long?> _traceSplit = Long("--trace-split", $"Jaeger file: at most N traces per file, which Jaeger UI's upload opens in seconds (default {TraceFileOptions.DefaultSplit}; 0: one file, whatever its size)", n => n is >= 0 and <= int.MaxValue ? null : $"--trace-split {n}: must be in 0..{int.MaxValue}");
    private readonly Option<long?> _traceTimeScale = Long("--trace-time-scale", "Jaeger file: show emulated ns x K / 1000 as µs (1000: one emulated ns is one displayed µs, so sub-µs holds are visible; default 1); emu.start_ns and emu.duration_ns keep the true times", n => n is >= 1 and <= TraceFileOptions.MaxTimeScale ? null : $"--trace-time-scale {n}: must be in 1..{TraceFileOptions.MaxTimeScale}", "K");
    private readonly Option<long?> _traceWindow = Long("--trace-window", "Jaeger file: machine timeline, one trace per emulated window of NS ns holding every CPU's traces that began in it, one service per CPU (lanes side by side)", n => n >= 1 ? null : $"--trace-window {n}: must be >= 1", "NS");
    private readonly Option<string?> _otlp = Text("--otlp", "URL", "export spans and metrics over OTLP (gRPC, e.g. http://localhost:4317; Jaeger's native intake); the OTEL_EXPORTER_OTLP_* variables work too");
    private readonly Option<double?> _traceSample = Number("--trace-sample", "R", "keep this fraction of traces (default 1); retried faults and violations always kept", r => r is >= 0 and <= 1, "expected a ratio in 0..1");
    private readonly Option<long?> _traceContended = Long("--trace-contended", "keep only traces with a wait or hold of at least NS emulated ns", n => n >= 0 ? null : $"--trace-contended {n}: must be >= 0", "NS");
    private readonly Option<long?> _traceMaxSpans = Long("--trace-max-spans", "write at most N spans: whole traces past it are left out, and counted", n => n >= 1 ? null : $"--trace-max-spans {n}: must be >= 1");
    private readonly Option<string?> _traceClock = Choice("--trace-clock", "span times: the emulated machine's (default; the run's start + emulated ns) or the host's (when the emulator did the work; emulated times stay in the attributes)", null, ["emulated", "host"]);
    private readonly Option<bool> _traceOrleans = new("--trace-orleans") { Description = "with --trace-clock host, --otlp and the orleans engine's silo in this process: Orleans' own spans (Microsoft.Orleans.*) join the traces of the faults that made them" };
    private readonly Option<long?> _quantum = Long("--quantum", "orleans: keep every CPU within NS emulated ns of the slowest running one (default: lax, no bound — fastest, but contention that overlaps only in emulated time is missed; 1000 makes host order follow emulated time to within 1 µs; 1 gives the sim engine's order, ties by task; CPUs whose runs share no VMA, page-table page or file run past it, as the sim engine's run-ahead does)", n => n >= 0 ? null : $"--quantum {n}: must be >= 0", "NS");
    private readonly Option<long?> _tasks = Long("--tasks", "tasks (one per CPU; default: every CPU)", n => n is >= int.MinValue and <= int.MaxValue ? null : $"--tasks {n}: out of range");
    private readonly Option<string?> _sanitizer = Choice("--sanitizer", "check the protocol invariants (default: on)", null, ["on", "off"]);
    private readonly Option<bool> _explore = new("--explore") { Description = "sim: schedule exploration on (seeded preemption delays, leaning on the window right after a lock is dropped), exactly as distemu explore runs a seed: reproduces its findings" };
    private readonly Option<bool> _exact = new("--exact") { Description = "sim: no run-ahead; every task waits its turn at every sync point. The results (counters, lock statistics, histograms, reports, event_log hash) are the same; it is slower, and there to check that they are" };
    private readonly Option<List<string>> _bug = Bugs("switch a historical bug back in (PROTOCOL.md §8), repeatable (the fork and mm_lock_seq ones under the sim engine only):");
    private readonly Option<string?> _out = Text("--out", "DIR", "results folder (default: results/<yyyyMMdd-HHmmss>-<preset>-<workload>)");

    // Trace replay (perf script --show-mmap-events --show-task-events -F tid,time,addr,event, plain or .gz; sim engine unless --engine orleans).
    private readonly Option<string?> _trace = Text("--trace", "FILE", "replay this perf trace (perf script --show-mmap-events --show-task-events -F tid,time,addr,event, plain or .gz; sim engine unless --engine orleans) instead of a workload (distemu replay FILE is the short form)");
    private readonly Option<double?> _timeScale = Number("--time-scale", "X", "replay: think time between a thread's ops = trace time gap × X (default: 1)", x => x >= 0, "expected a number >= 0");
    private readonly Option<bool> _asFastAsPossible = new("--as-fast-as-possible") { Description = "replay: ignore the trace's timestamps" };
    private readonly Option<bool> _noFaultKinds = new("--no-fault-kinds") { Description = "replay: do not infer reads from pages that fault twice; every fault in a writable mapping is a write" };
    private readonly Option<int?> _replicate = Int("--replicate", "replay: N copies of the traced process on other CPUs and nodes (default: 1)", 1, 65536, n => $"--replicate {n}: must be in 1..65536");
    private readonly Option<bool> _sharedMm = new("--shared-mm") { Description = "replay: the copies are threads of one process instead of separate processes" };
    private readonly Option<string?> _cpuMap = Text("--cpu-map", "tid=cpu,...", "replay: place threads on CPUs (default: spread over the nodes)");
    private readonly Option<bool> _lenient = new("--lenient") { Description = "replay: skip malformed lines (counted in replay.json) instead of stopping at the first" };

    private readonly Argument<string?> _traceArgument = new("FILE") { Description = "the perf script trace to replay (plain or .gz)", Arity = ArgumentArity.ZeroOrOne };

    /// <summary><c>distemu run</c>.</summary>
    public Command Run(Func<RunOptions, int> run)
    {
        var command = new Command("run", "run a workload (or, with --trace, a perf trace) on an emulated machine and write a results folder");
        AddOptions(command, withTrace: true);
        command.SetAction(p => run(Read(p, trace: null)));
        return command;
    }

    /// <summary><c>distemu replay FILE</c>: the same as <c>run --trace FILE</c>.</summary>
    public Command Replay(Func<RunOptions, int> run)
    {
        var command = new Command("replay", "replay a perf trace: distemu replay FILE [run options] (the same as run --trace FILE)") { _traceArgument };
        AddOptions(command, withTrace: false);
        command.SetAction(p => run(Read(p, p.GetValue(_traceArgument) ?? throw new UsageException("replay: expected a trace file: distemu replay FILE [run options]"))));
        return command;
    }

    private void AddOptions(Command command, bool withTrace)
    {
        CompletePresets(_preset);
        CompleteWorkloads(_workload);
        _policy.CompletionSources.Add([.. FaultPolicies.All.Select(p => p.Name())]);
        Option[] options =
        [
            _preset, _machine, _workload, _param, _policy, _engine, _cluster, _clusterId, _serviceId, _seed, _ops, _duration,
            _traceFile, _traceSplit, _traceTimeScale, _traceWindow, _otlp, _traceSample, _traceContended, _traceMaxSpans, _traceClock, _traceOrleans, _quantum, _tasks,
            _sanitizer, _explore, _exact, _bug, _out,
        ];
        foreach (var o in options) command.Options.Add(o);
        if (withTrace) command.Options.Add(_trace);
        foreach (var o in new Option[] { _timeScale, _asFastAsPossible, _noFaultKinds, _replicate, _sharedMm, _cpuMap, _lenient }) command.Options.Add(o);
    }

    private RunOptions Read(System.CommandLine.ParseResult p, string? trace)
    {
        var d = new RunOptions();
        if (p.GetResult(_preset) != null && p.GetResult(_machine) != null)
            throw new UsageException("--preset and --machine are exclusive; in a machine file use 'base: PRESET'");
        var duration = p.GetValue(_duration);
        return new RunOptions
        {
            Preset = p.GetValue(_preset) ?? d.Preset,
            MachineFile = p.GetValue(_machine),
            Workload = p.GetValue(_workload) ?? d.Workload,
            Params = p.Given(_param) ?? d.Params,
            Policy = p.GetValue(_policy),
            Engine = p.GetValue(_engine) ?? d.Engine,
            EngineGiven = p.GetResult(_engine) != null,
            Cluster = p.GetValue(_cluster),
            ClusterId = p.GetValue(_clusterId),
            ServiceId = p.GetValue(_serviceId),
            Seed = p.GetValue(_seed) ?? d.Seed,
            Ops = p.GetValue(_ops) ?? d.Ops,
            Duration = duration?.Time,
            DurationText = duration?.Text,
            TraceFiles = p.GetValue(_traceFile) ?? [],
            TraceSplit = p.GetValue(_traceSplit) is { } split ? (int)split : null,
            TraceTimeScale = p.GetValue(_traceTimeScale),
            TraceWindow = p.GetValue(_traceWindow),
            Otlp = p.GetValue(_otlp),
            TraceSample = p.GetValue(_traceSample) ?? d.TraceSample,
            TraceContended = p.GetValue(_traceContended),
            TraceMaxSpans = p.GetValue(_traceMaxSpans),
            TraceClock = p.GetValue(_traceClock) ?? d.TraceClock,
            TraceClockGiven = p.GetResult(_traceClock) != null,
            TraceOrleans = p.GetValue(_traceOrleans),
            Quantum = p.GetValue(_quantum) ?? d.Quantum,
            Tasks = p.GetValue(_tasks) is { } t ? (int)t : null,
            Sanitizer = (p.GetValue(_sanitizer) ?? "on") == "on",
            Explore = p.GetValue(_explore),
            Exact = p.GetValue(_exact),
            Bugs = p.Given(_bug) ?? d.Bugs,
            Out = p.GetValue(_out),
            Trace = trace ?? p.GetValue(_trace),
            TimeScale = p.GetValue(_timeScale) ?? d.TimeScale,
            AsFastAsPossible = p.GetValue(_asFastAsPossible),
            NoFaultKinds = p.GetValue(_noFaultKinds),
            Replicate = p.GetValue(_replicate) ?? d.Replicate,
            SharedMm = p.GetValue(_sharedMm),
            CpuMap = p.GetValue(_cpuMap),
            Lenient = p.GetValue(_lenient),
        };
    }
}
