using System.Globalization;

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

    /// <summary>The 32 lower-case hex digits into <paramref name="utf8"/> (at least 32 bytes), without a string.</summary>
    public void FormatHex(Span<byte> utf8)
    {
        Hi.TryFormat(utf8[..16], out _, "x16", CultureInfo.InvariantCulture);
        Lo.TryFormat(utf8[16..32], out _, "x16", CultureInfo.InvariantCulture);
    }
}

/// <summary>How an attribute's value is kept: a number, a flag, text, or a number shown as 0x-hex text (addresses).</summary>
public enum SpanTagKind : byte
{
    Long,
    Bool,
    String,
    Hex,
}

/// <summary>One attribute, unboxed: writers format it straight into their buffers; <see cref="Value"/> boxes on demand.</summary>
public readonly struct SpanTag(string key, SpanTagKind kind, long number, string? text)
{
    public string Key { get; } = key;
    public SpanTagKind Kind { get; } = kind;
    /// <summary>The value of a Long or Hex tag; 1 or 0 for a Bool tag.</summary>
    public long Number { get; } = number;
    /// <summary>The value of a String tag.</summary>
    public string? Text { get; } = text;

    /// <summary>The value as the OpenTelemetry attribute it becomes: long, bool or string (a Hex tag is "0x…" text).</summary>
    public object Value => Kind switch
    {
        SpanTagKind.Long => Number,
        SpanTagKind.Bool => Number != 0,
        SpanTagKind.Hex => HexText(Number),
        _ => Text ?? "",
    };

    public static string HexText(long n) => "0x" + n.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>The text form of a String or Hex tag into <paramref name="utf8"/> (a Hex tag needs at most 18 bytes).</summary>
    public int FormatHex(Span<byte> utf8)
    {
        utf8[0] = (byte)'0';
        utf8[1] = (byte)'x';
        Number.TryFormat(utf8[2..], out int n, "x", CultureInfo.InvariantCulture);
        return n + 2;
    }
}

/// <summary>
/// One span on the emulated machine's timeline: a verb on a kernel object (page_fault, vma_lock read, munmap,
/// migrate_page …), its emulated start and end in ns, the CPU (process) it ran on, attributes and references.
/// The recorder reuses span objects from one trace to the next: a sink that keeps a span beyond
/// <see cref="ITraceSink.Write"/> takes a <see cref="Clone"/>.
/// </summary>
public sealed class EmuSpan
{
    private SpanTag[] _tags = new SpanTag[10];
    private int _tagCount;

    public TraceId Trace { get; set; }
    public ulong SpanId { get; set; }
    public ulong ParentId { get; set; }
    public string Name { get; set; } = "";
    public long StartNs { get; set; }
    public long EndNs { get; set; }
    /// <summary>The process the span belongs to: "cpu-N", or "migrator-N".</summary>
    public string Process { get; set; } = "";
    public int Node { get; set; }
    public List<SpanRef> Links { get; } = new(0);
    public long DurationNs => EndNs - StartNs;
    /// <summary>The emulated duration (emu.duration_ns): <see cref="DurationNs"/> on the emulated trace clock; under
    /// --trace-clock host, where start and end are host time, what the emulated machine took.</summary>
    public long EmulatedDurationNs
    {
        get => _emulatedDurationNs ?? DurationNs;
        set => _emulatedDurationNs = value;
    }

    private long? _emulatedDurationNs;

    /// <summary>The emulated start (emu.start_ns): <see cref="StartNs"/> unless the span is on the host clock.</summary>
    public long EmulatedStartNs
    {
        get
        {
            foreach (ref readonly var t in Attributes)
                if (t.Key == StartKey) return t.Number;
            return StartNs;
        }
    }

    /// <summary>The attribute that keeps a span's emulated start whatever clock places it.</summary>
    public const string StartKey = "emu.start_ns";

    /// <summary>The emulated CPU of a process named "cpu-N"; -1 for any other (a migrator, a window's machine span).</summary>
    public static int CpuOf(string process) =>
        process.StartsWith("cpu-", StringComparison.Ordinal) && int.TryParse(process.AsSpan(4), NumberStyles.None, CultureInfo.InvariantCulture, out int cpu) ? cpu : -1;
    /// <summary>The span was exported live as it happened (an Activity, under --trace-orleans): exporters skip it.</summary>
    public bool ExportedLive { get; set; }

    /// <summary>Jaeger's mark of a failed span; exporters turn it into the OTLP status Error.</summary>
    public const string ErrorKey = "error";
    /// <summary>The sanitizer report a fault met ("S8: …"): the error status's description.</summary>
    public const string ViolationKey = "emu.violation";

    /// <summary>Null unless the span is marked failed (<see cref="ErrorKey"/>); then its description.</summary>
    public string? ErrorDescription
    {
        get
        {
            bool error = false;
            string? text = null;
            foreach (ref readonly var t in Attributes)
            {
                if (t.Key == ErrorKey && t.Kind == SpanTagKind.Bool) error = t.Number != 0;
                else if (t.Key == ViolationKey) text = t.Text;
            }
            return error ? text ?? "error" : null;
        }
    }

    /// <summary>The attributes in the order they were added, unboxed.</summary>
    public ReadOnlySpan<SpanTag> Attributes => _tags.AsSpan(0, _tagCount);

    /// <summary>The attributes as key / value pairs (boxing each value: for tests and exporters that take objects).</summary>
    public IEnumerable<KeyValuePair<string, object>> Tags
    {
        get
        {
            for (int i = 0; i < _tagCount; i++)
                yield return new(_tags[i].Key, _tags[i].Value);
        }
    }

    private EmuSpan Add(in SpanTag tag)
    {
        if (_tagCount == _tags.Length) Array.Resize(ref _tags, _tags.Length * 2);
        _tags[_tagCount++] = tag;
        return this;
    }

    /// <summary>An attribute as it is (e.g. one that came from another process).</summary>
    public EmuSpan Tag(in SpanTag tag) => Add(tag);
    public EmuSpan Tag(string key, long value) => Add(new SpanTag(key, SpanTagKind.Long, value, null));
    public EmuSpan Tag(string key, bool value) => Add(new SpanTag(key, SpanTagKind.Bool, value ? 1 : 0, null));
    public EmuSpan Tag(string key, string value) => Add(new SpanTag(key, SpanTagKind.String, 0, value));
    /// <summary>An address or other number shown as "0x…" text, formatted only when written.</summary>
    public EmuSpan TagHex(string key, long value) => Add(new SpanTag(key, SpanTagKind.Hex, value, null));

    /// <summary>Any attribute value: long/int, bool, or its invariant text.</summary>
    public EmuSpan Tag(string key, object value) => value switch
    {
        long l => Tag(key, l),
        int i => Tag(key, (long)i),
        bool b => Tag(key, b),
        _ => Tag(key, Convert.ToString(value, CultureInfo.InvariantCulture) ?? ""),
    };

    /// <summary>Make this object a fresh span (the recorder's reuse).</summary>
    internal void Reset(TraceId trace, ulong spanId, ulong parentId, string name, long startNs, string process, int node)
    {
        Trace = trace;
        SpanId = spanId;
        ParentId = parentId;
        Name = name;
        StartNs = startNs;
        EndNs = startNs;
        _emulatedDurationNs = null;
        ExportedLive = false;
        Process = process;
        Node = node;
        _tagCount = 0;
        Links.Clear();
    }

    /// <summary>A copy that the recorder will not reuse.</summary>
    public EmuSpan Clone()
    {
        var c = new EmuSpan
        {
            Trace = Trace,
            SpanId = SpanId,
            ParentId = ParentId,
            Name = Name,
            StartNs = StartNs,
            EndNs = EndNs,
            Process = Process,
            Node = Node,
            EmulatedDurationNs = EmulatedDurationNs,
            ExportedLive = ExportedLive,
        };
        foreach (var t in Attributes) c.Add(t);
        c.Links.AddRange(Links);
        return c;
    }
}

/// <summary>
/// Where finished traces go (a file writer, an exporter). Called once per kept trace, then once at the end. The
/// spans are the recorder's, valid for the length of the call: a sink that keeps them takes clones.
/// </summary>
public interface ITraceSink
{
    void Write(IReadOnlyList<EmuSpan> trace);
    void Complete();
}
