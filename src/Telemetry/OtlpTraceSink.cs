using System.Diagnostics;
using System.Reflection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace DistEmu.Telemetry;

/// <summary>How <see cref="OtlpTraceSink"/> exports. Unset endpoint / protocol / timeout fall back to the standard
/// OTEL_EXPORTER_OTLP_* environment variables (read by the OpenTelemetry SDK), then to the SDK's defaults.</summary>
public sealed record OtlpSinkOptions
{
    /// <summary>Collector endpoint, e.g. http://localhost:4317 (gRPC) or http://localhost:4318 (HTTP/protobuf).
    /// For HTTP/protobuf a bare endpoint gets "/v1/traces" appended, as the SDK does for the environment variable.</summary>
    public Uri? Endpoint { get; init; }
    public OtlpExportProtocol? Protocol { get; init; }
    /// <summary>Timeout of one export call (OTEL_EXPORTER_OTLP_TIMEOUT if unset).</summary>
    public TimeSpan? ExportTimeout { get; init; }
    /// <summary>Wall time that emulated 0 maps to.</summary>
    public DateTimeOffset Epoch { get; init; } = DateTimeOffset.UnixEpoch;
    /// <summary>Batch processor's bounded queue: spans beyond it are dropped, never waited for.</summary>
    public int MaxQueueSize { get; init; } = 8192;
    public int MaxExportBatchSize { get; init; } = 512;
    public TimeSpan ScheduledDelay { get; init; } = TimeSpan.FromMilliseconds(500);
    /// <summary>How long <see cref="OtlpTraceSink.Complete"/> may take in all (flush, then shutdown).</summary>
    public TimeSpan CompleteTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Other ActivitySources exported as their activities happen (--trace-orleans: Orleans' own and the
    /// recorder's live roots). Their activities are kept only within a trace (a parent-based sampler): Orleans' calls
    /// outside any traced fault are not exported.</summary>
    public IReadOnlyList<string> LiveSources { get; init; } = [];
    /// <summary>Export with this exporter instead of OTLP (tests: the in-memory exporter).</summary>
    public BaseExporter<Activity>? Exporter { get; init; }
}

/// <summary>
/// Live export of the recorder's traces over OTLP: each <see cref="EmuSpan"/> becomes an <see cref="Activity"/> of the
/// <c>DistEmu</c> source with the span's own trace id, span id and parent span id, its emulated start and end placed at
/// <see cref="OtlpSinkOptions.Epoch"/> + ns (OTLP keeps ns; Activity keeps 100 ns ticks), its attributes, and its
/// references as links. Runs its own TracerProvider (resource service.name "distemu"; the CPU goes in the
/// <c>emu.process</c> attribute because one provider has one resource) with a batch processor, so a slow or absent
/// collector costs dropped spans, never a stalled run.
/// </summary>
public sealed class OtlpTraceSink : ITraceSink, IDisposable
{
    public const string SourceName = "DistEmu";

    private readonly ActivitySource _source = new(SourceName);
    private readonly TracerProvider _provider;
    private readonly CountingExporter _exporter;
    private readonly OtlpSinkOptions _o;
    private readonly Dictionary<ulong, ActivitySpanId> _mapped = new();
    private long _received;
    private int _completed;

    public OtlpTraceSink(OtlpSinkOptions options)
    {
        _o = options;
        _exporter = new CountingExporter(options.Exporter ?? CreateOtlpExporter(options));
        var builder = Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateDefault().AddService("distemu"))
            .AddSource(SourceName);
        foreach (var source in options.LiveSources) builder.AddSource(source);
        _provider = builder
            // The recorder already sampled; a root here has a trace id (a parent context without a span), which is
            // sampled as its Recorded flag says. A live activity with no parent at all (an Orleans call outside any
            // traced fault) is not.
            .SetSampler(options.LiveSources.Count == 0 ? new AlwaysOnSampler() : new ParentBasedSampler(new AlwaysOffSampler()))
            .AddProcessor(new BatchActivityExportProcessor(_exporter, options.MaxQueueSize, (int)options.ScheduledDelay.TotalMilliseconds,
                (int)(options.ExportTimeout ?? TimeSpan.FromSeconds(10)).TotalMilliseconds, Math.Min(options.MaxExportBatchSize, options.MaxQueueSize)))
            .Build();
    }

    /// <summary>True if the exported span ids are the EmuSpans' own (this runtime's Activity lets them be set);
    /// otherwise they are fresh ids, with parents and links remapped onto them within this sink.</summary>
    public static bool PreservesSpanIds => ActivityIds.Supported;

    /// <summary>Spans handed to the SDK.</summary>
    public long Received => Interlocked.Read(ref _received);
    /// <summary>Spans the exporter reported as exported.</summary>
    public long Exported => _exporter.Exported;
    /// <summary>Spans lost: failed exports so far; after <see cref="Complete"/>, every span received and not exported
    /// (failed, dropped by the full queue, or still queued when the flush timed out).</summary>
    public long Dropped => Volatile.Read(ref _completed) != 0 ? Math.Max(Received - Exported, _exporter.Failed) : _exporter.Failed;
    /// <summary>Spans the exporter was given (exported or failed); the rest never left the batch queue.</summary>
    public long Offered => _exporter.Offered;
    /// <summary>Whether the final flush finished within its timeout.</summary>
    public bool Flushed { get; private set; }

    private static OtlpTraceExporter CreateOtlpExporter(OtlpSinkOptions o)
    {
        var x = new OtlpExporterOptions(); // reads OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL / _HEADERS / _TIMEOUT
        if (o.Protocol is { } p) x.Protocol = p;
        if (o.Endpoint is { } e)
        {
            if (x.Protocol == OtlpExportProtocol.HttpProtobuf && e.AbsolutePath is "" or "/")
                e = new Uri(e, "v1/traces");
            x.Endpoint = e;
        }
        if (o.ExportTimeout is { } t) x.TimeoutMilliseconds = (int)t.TotalMilliseconds;
        return new OtlpTraceExporter(x);
    }

    /// <summary>Turns a trace into Activities at once (the recorder's spans are valid only during this call).</summary>
    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        if (Volatile.Read(ref _completed) != 0) return;
        Emit(trace);
    }

    private void Emit(IReadOnlyList<EmuSpan> trace)
    {
        // Parents before children (the recorder hands a trace over root last), so remapped parent ids are known.
        var ids = new HashSet<ulong>(trace.Count);
        foreach (var s in trace) ids.Add(s.SpanId);
        var done = new HashSet<ulong>(trace.Count);
        var pending = new List<EmuSpan>(trace);
        while (pending.Count > 0)
        {
            int before = pending.Count;
            pending.RemoveAll(s =>
            {
                if (s.ParentId != 0 && ids.Contains(s.ParentId) && !done.Contains(s.ParentId)) return false;
                EmitSpan(s);
                done.Add(s.SpanId);
                return true;
            });
            if (pending.Count == before) // a cycle cannot come from the recorder; emit the rest as they are
            {
                foreach (var s in pending) EmitSpan(s);
                break;
            }
        }
    }

    private static ActivityTraceId TraceIdOf(TraceId t) => ActivityIds.TraceIdOf(t);
    private static ActivitySpanId SpanIdOf(ulong id) => ActivityIds.SpanIdOf(id);

    private ActivitySpanId Mapped(ulong emuId)
    {
        if (PreservesSpanIds) return SpanIdOf(emuId);
        lock (_mapped) return _mapped.TryGetValue(emuId, out var id) ? id : SpanIdOf(emuId);
    }

    private void EmitSpan(EmuSpan s)
    {
        if (s.ExportedLive) return; // its live Activity was exported when it stopped
        var traceId = TraceIdOf(s.Trace);
        // A root's "parent" context carries only the trace id: Activity takes the trace id from it and leaves
        // ParentSpanId empty when the context's span id is default.
        var parent = new ActivityContext(traceId, s.ParentId == 0 ? default : Mapped(s.ParentId), ActivityTraceFlags.Recorded);
        List<ActivityLink>? links = null;
        if (s.Links.Count > 0)
        {
            links = new List<ActivityLink>(s.Links.Count);
            foreach (var l in s.Links)
                links.Add(new ActivityLink(new ActivityContext(TraceIdOf(l.Trace), Mapped(l.SpanId), ActivityTraceFlags.Recorded),
                    new ActivityTagsCollection { ["emu.ref"] = l.Type == SpanRefType.FollowsFrom ? "FOLLOWS_FROM" : "CHILD_OF" }));
        }
        var previous = Activity.Current;
        var a = _source.CreateActivity(s.Name, ActivityKind.Internal, parent, null, links, ActivityIdFormat.W3C);
        if (a is null) return; // no listener (provider shut down)
        a.SetStartTime(At(s.StartNs).UtcDateTime);
        a.Start();
        if (!ActivityIds.TrySet(a, s.SpanId))
        {
            lock (_mapped)
            {
                if (_mapped.Count >= 1 << 20) _mapped.Clear(); // bounded: old links then keep the EmuSpan's raw id
                _mapped[s.SpanId] = a.SpanId;
            }
        }
        foreach (ref readonly var t in s.Attributes) a.SetTag(t.Key, t.Value);
        a.SetTag("emu.process", s.Process);
        a.SetTag("emu.duration_ns", s.EmulatedDurationNs);
        if (s.ErrorDescription is { } error) a.SetStatus(ActivityStatusCode.Error, error);
        a.SetEndTime(At(s.EndNs).UtcDateTime);
        Interlocked.Increment(ref _received);
        a.Stop();
        Activity.Current = previous;
    }

    private DateTimeOffset At(long ns) => _o.Epoch.AddTicks(ns / 100);

    /// <summary>Flushes (bounded by <see cref="OtlpSinkOptions.CompleteTimeout"/> in all) and shuts the provider down.</summary>
    public void Complete()
    {
        if (Interlocked.Exchange(ref _completed, 1) != 0) return;
        var sw = Stopwatch.StartNew();
        int total = (int)_o.CompleteTimeout.TotalMilliseconds;
        try
        {
            Flushed = _provider.ForceFlush(total);
            _provider.Shutdown(Math.Max(0, total - (int)sw.ElapsedMilliseconds));
        }
        catch (Exception)
        {
            // Export trouble must never fail the run; what was not exported is counted in Dropped.
        }
    }

    public void Dispose()
    {
        Complete();
        _provider.Dispose();
        _source.Dispose();
    }

    /// <summary>Passes batches to the real exporter and counts what it exported and what failed.</summary>
    private sealed class CountingExporter(BaseExporter<Activity> inner) : BaseExporter<Activity>
    {
        private static readonly PropertyInfo? ParentProviderProperty = typeof(BaseExporter<Activity>).GetProperty(nameof(ParentProvider));
        private long _exported, _failed, _offered;
        private bool _parentSet;

        public long Exported => Interlocked.Read(ref _exported);
        public long Failed => Interlocked.Read(ref _failed);
        public long Offered => Interlocked.Read(ref _offered);

        public override ExportResult Export(in Batch<Activity> batch)
        {
            if (!_parentSet)
            {
                // The OTLP exporter takes the resource (service.name) from its ParentProvider, which the SDK sets only
                // on the exporter a processor owns — this decorator; hand it on (its setter is internal).
                _parentSet = true;
                if (inner.ParentProvider is null && ParentProvider is not null)
                    ParentProviderProperty?.SetValue(inner, ParentProvider);
            }
            long n = batch.Count;
            Interlocked.Add(ref _offered, n);
            ExportResult r;
            try
            {
                r = inner.Export(batch);
            }
            catch (Exception)
            {
                r = ExportResult.Failure;
            }
            Interlocked.Add(ref r == ExportResult.Success ? ref _exported : ref _failed, n);
            return r;
        }

        protected override bool OnForceFlush(int timeoutMilliseconds) => inner.ForceFlush(timeoutMilliseconds);
        protected override bool OnShutdown(int timeoutMilliseconds) => inner.Shutdown(timeoutMilliseconds);

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
