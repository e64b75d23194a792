using DistEmu.Abstractions;
using DistEmu.Telemetry;

namespace DistEmu.Grains.Support;

/// <summary>
/// A grain's share of the run's spans on their way to the run's <see cref="ISpanCollector"/>: what its kernel share's
/// <see cref="SpanRecorder"/> keeps (whole traces rooted here, and fragments of traces rooted in a calling grain).
/// The recorder writes synchronously from the kernel core, which knows nothing of Orleans, so spans only collect here;
/// they leave at the grain's flush points (<see cref="Flush"/>, <see cref="Drain"/>), which are grain turns.
/// Bounded: a grain holds one batch (plus what one call records past it) and has at most one batch in flight; a full
/// batch waits for the one in flight, so a collector that falls behind holds the grain back, not its memory.
/// </summary>
public sealed class GrainSpans(ISpanCollector? collector, int batchSize = TracingConfig.DefaultBatchSpans) : ITraceSink
{
    private List<SpanMessage> _batch = new();
    private Task? _inFlight;

    public int BatchSize => batchSize;
    /// <summary>Spans waiting here for the next hand-over.</summary>
    public int Held => _batch.Count;
    /// <summary>Spans handed to the collector (the calls that completed).</summary>
    public long Sent { get; private set; }
    /// <summary>Spans lost: a hand-over that failed (the client went away), or no collector to hand them to.</summary>
    public long Dropped { get; private set; }
    /// <summary>A flush point would send: a full batch is waiting.</summary>
    public bool Full => _batch.Count >= batchSize;

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        foreach (var s in trace)
            _batch.Add(SpanCodec.ToMessage(s));
    }

    public void Complete()
    {
    }

    /// <summary>A flush point: a full batch goes once the previous one was taken (the caller waits for that, not for this one).</summary>
    public Task Flush() => Full ? Send(drain: false) : Task.CompletedTask;

    /// <summary>Everything held goes, and the call returns once the collector has taken all of it (before the grain reports its counters).</summary>
    public Task Drain() => _batch.Count > 0 || _inFlight is { IsCompleted: false } ? Send(drain: true) : Task.CompletedTask;

    private async Task Send(bool drain)
    {
        // Reentrant grains: several turns may wait here at once; after each wait the state is looked at again, and only
        // a turn that finds nothing in flight sends (no await between the look and the send).
        while (drain ? _batch.Count > 0 : Full)
        {
            if (_inFlight is { IsCompleted: false } previous)
            {
                await previous;
                continue;
            }
            var spans = _batch.ToArray();
            _batch = new List<SpanMessage>(Math.Min(spans.Length, batchSize));
            _inFlight = Hand(spans);
        }
        if (drain && _inFlight is { } last) await last;
    }

    /// <summary>One batch to the collector; never throws (a batch it could not take is counted as dropped).</summary>
    private async Task Hand(SpanMessage[] spans)
    {
        if (collector is null)
        {
            Dropped += spans.Length;
            return;
        }
        try
        {
            await collector.Write(new SpanBatch { Spans = spans });
            Sent += spans.Length;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Dropped += spans.Length;
        }
    }
}
