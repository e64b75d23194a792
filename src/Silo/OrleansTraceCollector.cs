using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Telemetry;

namespace DistEmu.Silo;

/// <summary>
/// The orleans engine's side of a traced run. The grains record spans with the same recorder as the sim engine, each
/// its own share — a fault's root in its CPU grain, its lock holds and migration wait in the VMA and mm grains that ran
/// them, as children of the root (the caller's span travels with every call) — and hand them here during the run, in
/// batches with one in flight per grain (<see cref="ISpanCollector"/>, an object reference the grains get in the run's
/// config). A trace's fragments come from different grains at different times, so they are spilled to disk by trace id
/// (<see cref="SpanSpill"/>) and joined at the end, one bucket at a time: each trace is written once to the run's sinks,
/// whole (its children by start, its root last), within the user's budget (<see cref="TraceBudget"/>), with one
/// process per emulated CPU as under the sim engine. Memory is bounded by one bucket, not by the run's length.
/// </summary>
public sealed class OrleansTraceCollector : ISpanCollector, IDisposable
{
    private readonly TraceBudget _budget;
    private readonly SpanSpill _spill;
    private readonly Lock _lock = new();
    private ISpanCollector? _reference;
    private bool _completed;
    private long _late;

    /// <param name="maxSpans">--trace-max-spans: whole traces past it are left out and counted.</param>
    /// <param name="spillRoot">Where the temporary spill folder goes (default: the system's temporary folder).</param>
    public OrleansTraceCollector(ITraceSink sink, TracingConfig config, long maxSpans = long.MaxValue, string? spillRoot = null, int buckets = SpanSpill.DefaultBuckets)
    {
        Config = config;
        _budget = new TraceBudget(sink, maxSpans);
        _spill = new SpanSpill(spillRoot, buckets);
    }

    public TracingConfig Config { get; }

    /// <summary>Spans and traces written, and spans and traces the budget left out.</summary>
    public long Spans => _budget.Spans;
    public long Traces => _budget.Traces;
    public long LeftOutSpans => _budget.LeftOutSpans;
    public long LeftOutTraces => _budget.LeftOutTraces;
    /// <summary>Spans the grains handed over.</summary>
    public long Received { get; private set; }
    /// <summary>Spans left out by sampling (in the grains).</summary>
    public long SampledOut { get; private set; }
    /// <summary>Spans recorded that never reached the writer: a batch a grain could not hand over, one that came after the
    /// end, or the difference between what the grains say they recorded and what came.</summary>
    public long Dropped { get; private set; }
    /// <summary>The most spans held at once while joining (one bucket): the writer's memory bound, in spans.</summary>
    public int PeakBucketSpans { get; private set; }
    public string SpillFolder => _spill.Folder;

    /// <summary>Makes this collector reachable from the grains of <paramref name="grains"/>' cluster; the run's config carries it.</summary>
    public TracingConfig Attach(IGrainFactory grains)
    {
        _reference ??= grains.CreateObjectReference<ISpanCollector>(this);
        Config.Collector = _reference;
        return Config;
    }

    public Task Write(SpanBatch batch)
    {
        lock (_lock)
        {
            if (_completed)
            {
                _late += batch.Spans.Length;
                return Task.CompletedTask;
            }
            foreach (var m in batch.Spans) _spill.Append(m);
            Received += batch.Spans.Length;
        }
        return Task.CompletedTask;
    }

    /// <summary>
    /// The run's end, once every grain gave its counters (each handed over all its spans first): the counts from
    /// <paramref name="stats"/>, then every trace joined and written, and the spill folder removed.
    /// </summary>
    public void Complete(StatsMessage stats, IGrainFactory? grains = null)
    {
        lock (_lock) _completed = true;
        if (grains != null && _reference != null)
        {
            grains.DeleteObjectReference<ISpanCollector>(_reference);
            _reference = null;
            Config.Collector = null;
        }
        if (stats.SpanCounts.Length >= 3)
        {
            long recorded = stats.SpanCounts[0], notHanded = stats.SpanCounts[2];
            SampledOut += stats.SpanCounts[1];
            // What the grains recorded and neither handed over nor counted as dropped is lost too (none, unless a bug).
            Dropped += notHanded + _late + Math.Max(0, recorded - notHanded - _late - Received);
        }
        try
        {
            for (int b = 0; b < _spill.Buckets; b++)
                WriteBucket(b);
        }
        finally
        {
            _spill.Dispose();
        }
    }

    /// <summary>One bucket's traces (roots' start order, children by start, root last), each whole, to the sinks.</summary>
    private void WriteBucket(int bucket)
    {
        var traces = new Dictionary<TraceId, List<EmuSpan>>();
        int held = 0;
        foreach (var m in _spill.Read(bucket))
        {
            var span = SpanCodec.FromMessage(m);
            if (!traces.TryGetValue(span.Trace, out var list))
                traces[span.Trace] = list = new List<EmuSpan>();
            list.Add(span);
            held++;
        }
        PeakBucketSpans = Math.Max(PeakBucketSpans, held);
        foreach (var trace in traces.Values.OrderBy(t => t.Min(s => s.StartNs)))
        {
            trace.Sort((a, b) => a.ParentId == 0 != (b.ParentId == 0) ? (a.ParentId == 0 ? 1 : -1) : a.StartNs.CompareTo(b.StartNs));
            _budget.Write(trace);
        }
    }

    public void Dispose() => _spill.Dispose();
}
