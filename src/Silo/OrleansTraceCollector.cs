using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Telemetry;

namespace DistEmu.Silo;

/// <summary>
/// The orleans engine's side of a traced run. The grains record spans with the same recorder as the sim engine, each
/// its own share — a fault's root in its CPU grain, its lock holds and migration wait in the VMA and mm grains that ran
/// them, as children of the root (the caller's span travels with every call) — and hand them over with their stats at
/// the end of the run. This joins the fragments by trace id and writes each trace once to the run's sinks, with one
/// process per emulated CPU as under the sim engine. Memory is bounded by each grain's span limit.
/// </summary>
public sealed class OrleansTraceCollector(ITraceSink sink, TracingConfig config)
{
    public TracingConfig Config => config;

    /// <summary>Spans written, left out by sampling (in the grains), and dropped at a grain's limit.</summary>
    public long Spans { get; private set; }
    public long SampledOut { get; private set; }
    public long Dropped { get; private set; }

    /// <summary>Joins the spans of the run's stats into traces (roots' start order, children by start, root last) and writes them.</summary>
    public void Write(StatsMessage stats)
    {
        if (stats.SpanCounts.Length >= 3)
        {
            SampledOut += stats.SpanCounts[1];
            Dropped += stats.SpanCounts[2];
        }
        var traces = new Dictionary<TraceId, List<EmuSpan>>();
        foreach (var m in stats.Spans)
        {
            var span = SpanCodec.FromMessage(m);
            if (!traces.TryGetValue(span.Trace, out var list))
                traces[span.Trace] = list = new List<EmuSpan>();
            list.Add(span);
        }
        foreach (var trace in traces.Values.OrderBy(t => t.Min(s => s.StartNs)))
        {
            trace.Sort((a, b) => a.ParentId == 0 != (b.ParentId == 0) ? (a.ParentId == 0 ? 1 : -1) : a.StartNs.CompareTo(b.StartNs));
            Spans += trace.Count;
            sink.Write(trace);
        }
    }
}
