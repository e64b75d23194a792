using DistEmu.Abstractions;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;
using DistEmu.Telemetry;

namespace DistEmu.Client;

/// <summary>
/// A run's telemetry, wired in one place: spans to a trace file and/or live over OTLP (--trace-file, --otlp or the
/// OTEL_EXPORTER_OTLP_* variables), and the kernel's counters and histograms on the DistEmu meter over OTLP at the end.
/// Under the sim engine a <see cref="SpanRecorder"/> observes the run; under orleans the grains record and an
/// <see cref="OrleansTraceCollector"/> takes what they record during the run and writes it, trace by trace, when the run ends.
/// Everything is opened before the run, so an unwritable file fails first; an unreachable endpoint never fails a run.
/// </summary>
public sealed class RunTelemetry : IDisposable
{
    private readonly List<ITraceSink> _sinks = new();
    private readonly OtlpTraceSink? _otlp;
    private readonly KernelMetrics? _metrics;
    private readonly string _policy;
    /// <summary>Under sim: the traces as the recorder closes them, within --trace-max-spans (orleans: the collector's own).</summary>
    private readonly TraceBudget? _budget;
    private readonly long? _maxSpans;

    public SpanRecorder? Recorder { get; }
    public OrleansTraceCollector? Orleans { get; }

    /// <param name="engine">The engine the run uses (a trace replay's may differ from --engine's default).</param>
    public RunTelemetry(RunOptions o, MachineSpec machine, string engine)
    {
        _policy = machine.Policy.Name();
        var epoch = DateTimeOffset.UtcNow;
        Uri? endpoint = o.Otlp is null ? null : ParseEndpoint(o.Otlp);
        bool otlp = endpoint != null || Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 };
        Validate(o, otlp, engine); // before any file is opened
        bool hostClock = o.TraceClock == "host";
        foreach (var file in o.TraceFiles)
        {
            try
            {
                _sinks.Add(TraceFiles.Open(file, epoch, new TraceFileOptions
                {
                    Split = o.TraceSplit ?? TraceFileOptions.DefaultSplit,
                    TimeScale = o.TraceTimeScale ?? 1,
                    WindowNs = o.TraceWindow,
                    Run = new RunIdentity { Machine = machine.Name, Policy = _policy, Engine = engine, Seed = o.Seed },
                }));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                foreach (var opened in _sinks.OfType<IDisposable>()) opened.Dispose(); // nothing half-written is left open
                throw new UsageException($"--trace-file {file}: cannot write it: {e.Message}");
            }
        }
        if (otlp)
        {
            _otlp = new OtlpTraceSink(new OtlpSinkOptions
            {
                Endpoint = endpoint,
                Epoch = epoch,
                LiveSources = o.TraceOrleans ? ["Microsoft.Orleans.*", TracingConfig.LiveSourceName] : [],
            });
            _sinks.Add(_otlp);
            _metrics = new KernelMetrics(new KernelMetricsOptions { Endpoint = endpoint, UseEnvironment = endpoint is null });
        }
        if (_sinks.Count == 0) return;
        _maxSpans = o.TraceMaxSpans;
        if (engine == "sim")
        {
            var sinceEpoch = System.Diagnostics.Stopwatch.StartNew();
            // The recorder gives each trace whole when its root ends, so the budget can decide as they come.
            _budget = new TraceBudget(new FanOut(_sinks), o.TraceMaxSpans ?? long.MaxValue);
            Recorder = new SpanRecorder(_budget, new TracingOptions
            {
                SampleRatio = o.TraceSample,
                ContendedNs = o.TraceContended,
                Seed = o.Seed,
                Policy = _policy,
                Epoch = epoch,
                HostClock = hostClock ? () => sinceEpoch.Elapsed.Ticks * 100 : null,
            });
        }
        else
        {
            Orleans = new OrleansTraceCollector(new FanOut(_sinks), new TracingConfig
            {
                SampleRatio = o.TraceSample,
                ContendedNs = o.TraceContended ?? -1,
                HostClock = hostClock,
                EpochUnixNs = epoch.ToUnixTimeMilliseconds() * 1_000_000,
                LiveRoots = o.TraceOrleans,
            }, o.TraceMaxSpans ?? long.MaxValue);
        }
    }

    /// <summary>The tracing options that cannot go together (exit 2, before anything is opened).</summary>
    private static void Validate(RunOptions o, bool otlp, string engine)
    {
        if (o.TraceOrleans)
        {
            if (o.TraceClock != "host")
                throw new UsageException("--trace-orleans: Orleans' spans are on the host clock; add --trace-clock host");
            if (engine != "orleans")
                throw new UsageException($"--trace-orleans: needs the orleans engine (not --engine {engine})");
            if (o.Cluster != null)
                throw new UsageException("--trace-orleans: needs the silo in this process, not --cluster (the silos' own spans are not exported)");
            if (!otlp)
                throw new UsageException("--trace-orleans: Orleans' spans are exported over OTLP only; add --otlp URL (or set OTEL_EXPORTER_OTLP_ENDPOINT)");
        }
        bool files = o.TraceFiles.Count > 0;
        var twice = o.TraceFiles.GroupBy(f => Path.GetFullPath(f)).FirstOrDefault(g => g.Count() > 1);
        if (twice != null)
            throw new UsageException($"--trace-file {twice.First()}: given twice");
        if (o.TraceClockGiven && !files && !otlp)
            throw new UsageException("--trace-clock: only with --trace-file or --otlp (there are no spans to place)");
        bool jaegerFile = o.TraceFiles.Any(f => f.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
            && !f.EndsWith(TraceFiles.PerfettoSuffix, StringComparison.OrdinalIgnoreCase));
        foreach (var (given, name) in new[] { (o.TraceSplit != null, "--trace-split"), (o.TraceTimeScale != null, "--trace-time-scale"), (o.TraceWindow != null, "--trace-window") })
            if (given && !jaegerFile)
                throw new UsageException($"{name}: shapes a Jaeger trace file; add --trace-file PATH.json");
        if (o.TraceClock == "host" && (o.TraceTimeScale != null || o.TraceWindow != null))
            throw new UsageException($"{(o.TraceWindow != null ? "--trace-window" : "--trace-time-scale")}: works on the emulated timeline, not with --trace-clock host");
        if (o.TraceMaxSpans != null && !files && !otlp)
            throw new UsageException("--trace-max-spans: only with --trace-file or --otlp (there are no spans to write)");
    }

    private static Uri ParseEndpoint(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri : throw new UsageException($"--otlp '{text}': expected an http:// or https:// endpoint, e.g. http://localhost:4317");

    /// <summary>Complete the files, flush the exporters (bounded in time), publish the metrics, and note the counts in the result.</summary>
    public void Finish(RunResult result)
    {
        foreach (var s in _sinks) s.Complete();
        var files = _sinks.OfType<ITraceFile>().SelectMany(f => f.Files).ToList();
        if (Recorder != null && _budget != null)
            result.Trace = new TraceCounts(_budget.Spans, _budget.Traces, _otlp?.Dropped ?? 0, Recorder.SampledOut, _budget.LeftOutSpans, _budget.LeftOutTraces, _maxSpans, files);
        else if (Orleans != null)
            result.Trace = new TraceCounts(Orleans.Spans, Orleans.Traces, (_otlp?.Dropped ?? 0) + Orleans.Dropped, Orleans.SampledOut,
                Orleans.LeftOutSpans, Orleans.LeftOutTraces, _maxSpans, files);
        if (_metrics != null)
        {
            _metrics.Publish(result.Machine, new Dictionary<string, string> { ["emu.policy"] = _policy, ["emu.engine"] = result.Engine });
            _metrics.Flush();
        }
    }

    public void Dispose()
    {
        foreach (var s in _sinks) (s as IDisposable)?.Dispose();
        Orleans?.Dispose(); // its spill folder, also when the run failed
        _metrics?.Dispose();
    }

    /// <summary>Every kept trace to every sink; the sinks are completed one by one in <see cref="Finish"/>.</summary>
    private sealed class FanOut(List<ITraceSink> sinks) : ITraceSink
    {
        public void Write(IReadOnlyList<EmuSpan> trace)
        {
            foreach (var s in sinks) s.Write(trace);
        }

        public void Complete()
        {
        }
    }
}
