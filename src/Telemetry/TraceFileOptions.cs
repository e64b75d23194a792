namespace DistEmu.Telemetry;

/// <summary>How the trace files of a run are laid out for the viewers that open them (Jaeger UI's upload, Perfetto).</summary>
public sealed record TraceFileOptions
{
    /// <summary>Jaeger UI's upload (no backend) loads 2,000 traces in ~16 s and freezes on tens of thousands: the default part size.</summary>
    public const int DefaultSplit = 2000;
    /// <summary>The largest --trace-time-scale: 10⁶ µs per emulated ns keeps a 1,000 s emulated run within a long of µs.</summary>
    public const long MaxTimeScale = 1_000_000;

    /// <summary>--trace-split: at most this many traces per Jaeger file; more make PATH-0001.json … and PATH.index.json. 0: one file.</summary>
    public int Split { get; init; } = DefaultSplit;
    /// <summary>--trace-time-scale K: a Jaeger span shows emulated ns × K / 1000 µs (K = 1000: one emulated ns is one displayed µs).
    /// The true emulated times stay in the attributes (emu.start_ns, emu.duration_ns).</summary>
    public long TimeScale { get; init; } = 1;
    /// <summary>--trace-window NS: one trace per emulated window [k·NS, (k+1)·NS) holding every CPU's traces that began in it.</summary>
    public long? WindowNs { get; init; }
    /// <summary>What the run was: tags of every process, so a file says which machine, policy, engine and seed made it.</summary>
    public RunIdentity Run { get; init; } = new();
}

/// <summary>The run a trace file comes from (Jaeger process tags, Perfetto's process name); null fields are left out.</summary>
public sealed record RunIdentity
{
    public string? Machine { get; init; }
    public string? Policy { get; init; }
    public string? Engine { get; init; }
    public long? Seed { get; init; }

    /// <summary>"small, merged, sim engine, seed 1": a one-line name of the run.</summary>
    public string Describe() => string.Join(", ", new[]
    {
        Machine, Policy, Engine is null ? null : Engine + " engine", Seed is null ? null : $"seed {Seed}",
    }.Where(x => x != null));
}
