using System.Globalization;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu run</c> and <c>distemu replay</c>, filled from the command line (<see cref="RunCommandLine"/>).</summary>
public sealed record RunOptions
{
    public string Preset { get; init; } = "small";
    public string? MachineFile { get; init; }
    public string Workload { get; init; } = "page-fault1";
    public Dictionary<string, string> Params { get; init; } = new(StringComparer.Ordinal);
    public string? Policy { get; init; }
    public string Engine { get; init; } = "orleans";
    public long Seed { get; init; } = 1;
    public long Ops { get; init; } = Cli.DefaultOps;
    public int? Tasks { get; init; }
    public bool Sanitizer { get; init; } = true;
    /// <summary>Sim engine: schedule exploration on (seeded preemption delays), as distemu explore runs each seed.</summary>
    public bool Explore { get; init; }
    /// <summary>Sim engine: no run-ahead (every task waits its turn at every sync point); same results, slower.</summary>
    public bool Exact { get; init; }
    /// <summary>Sim engine: historical bugs switched back in (BugSwitches.Names).</summary>
    public List<string> Bugs { get; init; } = [];
    public string? Out { get; init; }
    public TimeSpan? Duration { get; init; }
    public long Quantum { get; init; }
    /// <summary>--trace-file, once per file: each path's suffix says its format (Jaeger JSON, Perfetto, OTLP JSON lines).</summary>
    public IReadOnlyList<string> TraceFiles { get; init; } = [];
    /// <summary>--trace-split: traces per Jaeger file (null: the default; 0: one file).</summary>
    public int? TraceSplit { get; init; }
    /// <summary>--trace-time-scale K: displayed µs = emulated ns × K / 1000 in the Jaeger file (null: 1).</summary>
    public long? TraceTimeScale { get; init; }
    /// <summary>--trace-window NS: the Jaeger file as a machine timeline, one trace per emulated window.</summary>
    public long? TraceWindow { get; init; }
    public string? Otlp { get; init; }
    public double TraceSample { get; init; } = 1.0;
    public long? TraceContended { get; init; }
    /// <summary>--trace-clock: "emulated" (default) or "host".</summary>
    public string TraceClock { get; init; } = "emulated";
    public bool TraceClockGiven { get; init; }
    public bool TraceOrleans { get; init; }
    /// <summary>--trace-max-spans: the most spans written; whole traces past it are left out and counted (null: no budget).</summary>
    public long? TraceMaxSpans { get; init; }
    /// <summary>A perf script trace to replay instead of a synthetic workload.</summary>
    public string? Trace { get; init; }
    public double TimeScale { get; init; } = 1.0;
    public bool AsFastAsPossible { get; init; }
    /// <summary>--no-fault-kinds: replay every fault in a writable mapping as a write (no read-then-write inference).</summary>
    public bool NoFaultKinds { get; init; }
    public int Replicate { get; init; } = 1;
    public bool SharedMm { get; init; }
    public string? CpuMap { get; init; }
    public bool Lenient { get; init; }
    public bool EngineGiven { get; init; }
    public string? DurationText { get; init; }
    /// <summary>An existing cluster to run on (redis://HOST:PORT or postgres://…) instead of a silo in this process.</summary>
    public string? Cluster { get; init; }
    public string? ClusterId { get; init; }
    public string? ServiceId { get; init; }

    /// <summary>"10s", "500ms", "2m", "1h" or plain seconds.</summary>
    public static TimeSpan ParseDuration(string v)
    {
        var units = new (string Suffix, double Seconds)[] { ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1) };
        foreach (var (suffix, seconds) in units)
        {
            if (!v.EndsWith(suffix, StringComparison.Ordinal)) continue;
            if (double.TryParse(v[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var n) && n > 0)
                return TimeSpan.FromSeconds(n * seconds);
            break;
        }
        throw new UsageException($"--duration '{v}': expected a positive time such as 10s, 500ms or 2m");
    }
}
