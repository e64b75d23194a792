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
        var c = s.Clone();
        c.Trace = Salt(s.Trace);
        for (int i = 0; i < c.Links.Count; i++) c.Links[i] = c.Links[i] with { Trace = Salt(c.Links[i].Trace) };
        return c;
    }).ToList());

    public void Complete() => inner.Complete();
}
