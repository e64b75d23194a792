namespace DistEmu.Telemetry;

/// <summary>What to record and how to place it in time.</summary>
public sealed record TracingOptions
{
    /// <summary>Fraction of traces kept (decided per trace from its id, so the same seed keeps the same ones).</summary>
    public double SampleRatio { get; init; } = 1.0;
    /// <summary>If set, keep only traces with a wait or hold of at least this many emulated ns (--trace-contended).</summary>
    public long? ContendedNs { get; init; }
    /// <summary>Seeds the span ids (each recorder of a run needs its own: the grains pass a per-grain value).</summary>
    public long Seed { get; init; } = 1;
    /// <summary>Children of this recorder's spans may be recorded elsewhere (by the grains a call went to): under
    /// contended-only a root that itself lasted the threshold is kept, so that theirs have a parent.</summary>
    public bool ChildrenElsewhere { get; init; }
    public string Policy { get; init; } = "merged";
    /// <summary>Wall-clock time that time 0 of the trace clock maps to (the run's start).</summary>
    public DateTimeOffset Epoch { get; init; } = DateTimeOffset.UnixEpoch;
    /// <summary>--trace-clock host: spans start and end at host time, this clock's ns since <see cref="Epoch"/>, when the
    /// emulator did the work (emulated times stay in the attributes). Null: the emulated clock (the default).</summary>
    public Func<long>? HostClock { get; init; }
    /// <summary>--trace-orleans: each kept root is also a live Activity of this source while it runs, so the grain calls
    /// it makes (Orleans' activity propagation) and Orleans' own spans join its trace. Host clock only.</summary>
    public System.Diagnostics.ActivitySource? Live { get; init; }
}
