using Orleans;

namespace DistEmu.Abstractions;

/// <summary>What the grains record spans with (the run's --trace-sample / --trace-contended).</summary>
[GenerateSerializer]
public sealed class TracingConfig
{
    [Id(0)] public double SampleRatio { get; set; } = 1.0;
    /// <summary>Keep only waits or holds of at least this many emulated ns (-1: not contended-only).</summary>
    [Id(1)] public long ContendedNs { get; set; } = -1;
    /// <summary>--trace-clock host: spans at host time, ns since <see cref="EpochUnixNs"/> (the run's start).</summary>
    [Id(3)] public bool HostClock { get; set; }
    [Id(4)] public long EpochUnixNs { get; set; }
    /// <summary>--trace-orleans: roots are live Activities of <see cref="LiveSourceName"/> while they run.</summary>
    [Id(5)] public bool LiveRoots { get; set; }

    /// <summary>Where the grains send their spans during the run (null: nowhere, and what they record counts as dropped).</summary>
    [Id(6)] public ISpanCollector? Collector { get; set; }
    /// <summary>Spans a grain gathers before it hands them over (one batch held, one in flight per grain).</summary>
    [Id(7)] public int BatchSpans { get; set; } = DefaultBatchSpans;

    /// <summary>About 0.5 MB of messages: large enough to amortise a call, small enough to hold in every grain.</summary>
    public const int DefaultBatchSpans = 2048;

    public const string LiveSourceName = "DistEmu.Live";
}

/// <summary>One span recorded in a grain, on its way to the run's trace writers (Telemetry's EmuSpan, flattened).</summary>
[GenerateSerializer]
public sealed class SpanMessage
{
    [Id(0)] public ulong TraceHi;
    [Id(1)] public ulong TraceLo;
    [Id(2)] public ulong SpanId;
    [Id(3)] public ulong ParentId;
    [Id(4)] public string Name = "";
    [Id(5)] public long StartNs;
    [Id(6)] public long EndNs;
    [Id(7)] public string Process = "";
    [Id(8)] public int Node;
    /// <summary>Attributes: key, kind (Telemetry's SpanTagKind), number, text.</summary>
    [Id(9)] public string[] TagKeys = [];
    [Id(10)] public byte[] TagKinds = [];
    [Id(11)] public long[] TagNumbers = [];
    [Id(12)] public string?[] TagTexts = [];
    /// <summary>References: type (0 CHILD_OF, 1 FOLLOWS_FROM), trace id, span id.</summary>
    [Id(13)] public byte[] LinkTypes = [];
    [Id(14)] public ulong[] LinkTraceHi = [];
    [Id(15)] public ulong[] LinkTraceLo = [];
    [Id(16)] public ulong[] LinkSpanIds = [];
    [Id(17)] public long EmulatedDurationNs;
    /// <summary>Exported live as an Activity when it ended (--trace-orleans): the OTLP export skips it.</summary>
    [Id(18)] public bool ExportedLive;
}
