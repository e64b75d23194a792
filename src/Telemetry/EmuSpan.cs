namespace DistEmu.Telemetry;

public enum SpanRefType : byte
{
    ChildOf,
    FollowsFrom,
}

/// <summary>A reference from a span to another (Jaeger's CHILD_OF / FOLLOWS_FROM; OTLP's parent and links).</summary>
public readonly record struct SpanRef(SpanRefType Type, TraceId Trace, ulong SpanId);

/// <summary>A 128-bit trace id.</summary>
public readonly record struct TraceId(ulong Hi, ulong Lo)
{
    public override string ToString() => $"{Hi:x16}{Lo:x16}";
}

/// <summary>
/// One span on the emulated machine's timeline: a verb on a kernel object (page_fault, vma_lock read, munmap,
/// migrate_page …), its emulated start and end in ns, the CPU (process) it ran on, attributes and references.
/// </summary>
public sealed class EmuSpan
{
    public required TraceId Trace { get; init; }
    public required ulong SpanId { get; init; }
    public ulong ParentId { get; set; }
    public required string Name { get; init; }
    public required long StartNs { get; init; }
    public long EndNs { get; set; }
    /// <summary>The process the span belongs to: "cpu-N", or "migrator-N".</summary>
    public required string Process { get; init; }
    public int Node { get; init; }
    public List<KeyValuePair<string, object>> Tags { get; } = new(6);
    public List<SpanRef> Links { get; } = new(0);
    public long DurationNs => EndNs - StartNs;

    public EmuSpan Tag(string key, object value)
    {
        Tags.Add(new(key, value));
        return this;
    }
}

/// <summary>Where finished traces go (a file writer, an exporter). Called once per kept trace, then once at the end.</summary>
public interface ITraceSink
{
    void Write(IReadOnlyList<EmuSpan> trace);
    void Complete();
}
