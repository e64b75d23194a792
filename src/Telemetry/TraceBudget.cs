namespace DistEmu.Telemetry;

/// <summary>
/// --trace-max-spans: the user's budget of spans in the run's trace files and export. A trace is written whole or left
/// out whole (never a root without its children, nor children without their root): it is written if it still fits,
/// so a large trace left out does not stop smaller ones after it. Every trace must come here complete — as the sim
/// engine's recorder gives them, and as the orleans engine's collector gives them once it has joined the fragments.
/// Counts what was written and what was left out, with or without a budget.
/// </summary>
public sealed class TraceBudget(ITraceSink sink, long maxSpans = long.MaxValue) : ITraceSink
{
    public long MaxSpans => maxSpans;
    public long Spans { get; private set; }
    public long Traces { get; private set; }
    public long LeftOutSpans { get; private set; }
    public long LeftOutTraces { get; private set; }

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        if (trace.Count > maxSpans - Spans)
        {
            LeftOutSpans += trace.Count;
            LeftOutTraces++;
            return;
        }
        Spans += trace.Count;
        Traces++;
        sink.Write(trace);
    }

    public void Complete() => sink.Complete();
}
