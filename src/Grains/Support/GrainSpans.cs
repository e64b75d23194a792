using DistEmu.Abstractions;
using DistEmu.Telemetry;

namespace DistEmu.Grains.Support;

/// <summary>
/// A grain's share of the run's spans: what its kernel share's <see cref="SpanRecorder"/> keeps (whole traces rooted
/// here, and fragments of traces rooted in a calling grain), held as messages until the machine grain collects them
/// with the stats. Bounded: past <see cref="TracingConfig.MaxSpans"/> spans, the rest are counted as dropped.
/// </summary>
public sealed class GrainSpans(int max) : ITraceSink
{
    private List<SpanMessage> _spans = new();

    public long Dropped { get; private set; }

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        foreach (var s in trace)
        {
            if (_spans.Count >= max)
            {
                Dropped++;
                continue;
            }
            _spans.Add(SpanCodec.ToMessage(s));
        }
    }

    public void Complete()
    {
    }

    /// <summary>The spans so far, handed over once (a second collection gets only newer ones).</summary>
    public List<SpanMessage> Take()
    {
        var taken = _spans;
        _spans = new();
        return taken;
    }
}
