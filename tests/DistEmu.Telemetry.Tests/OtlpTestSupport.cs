namespace DistEmu.Telemetry.Tests;

/// <summary>The OTLP tests share the process-wide "DistEmu" ActivitySource / Meter name: a provider listens to every
/// source of that name, so they must not run in parallel with each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class OtlpCollection
{
    public const string Name = "OTLP export";
}

/// <summary>Hands each trace to several sinks.</summary>
internal sealed class TeeSink(params ITraceSink[] sinks) : ITraceSink
{
    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        foreach (var s in sinks) s.Write(trace);
    }

    public void Complete()
    {
        foreach (var s in sinks) s.Complete();
    }
}

/// <summary>Gives the traces other trace ids (xor of the high half), so one receiver can take the same run twice.</summary>
internal sealed class SaltedSink(ITraceSink inner, ulong salt) : ITraceSink
{
    private TraceId Salt(TraceId t) => t with { Hi = t.Hi ^ salt };

    public void Write(IReadOnlyList<EmuSpan> trace) => inner.Write(trace.Select(s =>
    {
        var c = new EmuSpan { Trace = Salt(s.Trace), SpanId = s.SpanId, ParentId = s.ParentId, Name = s.Name, StartNs = s.StartNs, EndNs = s.EndNs, Process = s.Process, Node = s.Node };
        c.Tags.AddRange(s.Tags);
        c.Links.AddRange(s.Links.Select(l => l with { Trace = Salt(l.Trace) }));
        return c;
    }).ToList());

    public void Complete() => inner.Complete();
}
