using System.Text;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// Jaeger's JSON trace format, the one Jaeger UI's "Upload JSON file" opens without a backend:
/// <c>{"data":[{"traceID", "spans":[…], "processes":{…}}]}</c>, times in µs, nesting only through
/// <c>references</c> (CHILD_OF, FOLLOWS_FROM), one process per emulated CPU (service "cpu-N", tag node).
/// Traces are streamed to PATH.tmp-PID as they finish (memory stays bounded; the writes happen on a thread of their own,
/// <see cref="BackgroundFileWriter"/>) and renamed to PATH on completion. The output is compact JSON (what
/// System.Text.Json writes), assembled from constant fragments with ids and numbers formatted in place: no string per span.
/// </summary>
public sealed class JaegerJsonFile : ITraceSink, IDisposable
{
    private readonly AtomicFile _file;
    private readonly BackgroundFileWriter _out;
    private readonly Utf8Out _w;
    private readonly long _epochMicros;
    private readonly List<(string Name, int Node)> _processes = new(4);
    private readonly (string? Key, SpanTagKind Kind, byte[] Bytes)[] _prefixes = new (string?, SpanTagKind, byte[])[16];
    private readonly Dictionary<string, byte[]?[]> _prefixesByKey = new(ReferenceEqualityComparer.Instance);
    private bool _first = true;
    private bool _done;

    /// <summary>Opens the temporary file at once, so an unwritable path fails before the run starts.</summary>
    public JaegerJsonFile(string path, DateTimeOffset epoch)
    {
        _file = new AtomicFile(path);
        _out = new BackgroundFileWriter(_file.Stream);
        _w = new Utf8Out(_out);
        _epochMicros = epoch.ToUnixTimeMilliseconds() * 1000;
        _w.Raw("{\"data\":["u8);
    }

    public long Traces { get; private set; }

    private long Micros(long ns) => _epochMicros + ns / 1000;

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        _processes.Clear();
        var w = _w;
        w.Raw(_first ? "{\"traceID\":\""u8 : ",{\"traceID\":\""u8);
        _first = false;
        w.Hex32(trace[0].Trace);
        w.Raw("\",\"spans\":["u8);
        for (int i = 0; i < trace.Count; i++)
        {
            var s = trace[i];
            int process = ProcessIndex(s);
            w.Raw(i == 0 ? "{\"traceID\":\""u8 : ",{\"traceID\":\""u8);
            w.Hex32(s.Trace);
            w.Raw("\",\"spanID\":\""u8);
            w.Hex16(s.SpanId);
            w.Raw("\",\"operationName\":\""u8);
            w.String(s.Name);
            w.Raw("\",\"references\":["u8);
            bool firstRef = true;
            if (s.ParentId != 0) Reference(ref firstRef, SpanRefType.ChildOf, s.Trace, s.ParentId);
            foreach (var l in s.Links) Reference(ref firstRef, l.Type, l.Trace, l.SpanId);
            w.Raw("],\"startTime\":"u8);
            w.Number(Micros(s.StartNs));
            w.Raw(",\"duration\":"u8);
            w.Number(Math.Max(0, Micros(s.EndNs) - Micros(s.StartNs)));
            w.Raw(",\"tags\":["u8);
            var tags = s.Attributes;
            for (int k = 0; k < tags.Length; k++) Tag(k, tags[k]);
            w.Raw(tags.Length == 0 ? "{\"key\":\"emu.duration_ns\",\"type\":\"int64\",\"value\":"u8 : ",{\"key\":\"emu.duration_ns\",\"type\":\"int64\",\"value\":"u8);
            w.Number(s.EmulatedDurationNs);
            w.Raw("}],\"logs\":[],\"processID\":\"p"u8);
            w.Number(process + 1);
            w.Raw("\"}"u8);
        }
        w.Raw("],\"processes\":{"u8);
        for (int p = 0; p < _processes.Count; p++)
        {
            w.Raw(p == 0 ? "\"p"u8 : ",\"p"u8);
            w.Number(p + 1);
            w.Raw("\":{\"serviceName\":\""u8);
            w.String(_processes[p].Name);
            w.Raw("\",\"tags\":[{\"key\":\"node\",\"type\":\"int64\",\"value\":"u8);
            w.Number(_processes[p].Node);
            w.Raw("}]}"u8);
        }
        w.Raw("}}"u8);
        Traces++;
    }

    /// <summary>The trace's process of this span ("p1", "p2", … in order of first appearance).</summary>
    private int ProcessIndex(EmuSpan s)
    {
        for (int i = 0; i < _processes.Count; i++)
            if (ReferenceEquals(_processes[i].Name, s.Process) || _processes[i].Name == s.Process) return i;
        _processes.Add((s.Process, s.Node));
        return _processes.Count - 1;
    }

    private void Reference(ref bool first, SpanRefType type, TraceId trace, ulong span)
    {
        if (!first) _w.Byte((byte)',');
        first = false;
        _w.Raw(type == SpanRefType.ChildOf ? "{\"refType\":\"CHILD_OF\",\"traceID\":\""u8 : "{\"refType\":\"FOLLOWS_FROM\",\"traceID\":\""u8);
        _w.Hex32(trace);
        _w.Raw("\",\"spanID\":\""u8);
        _w.Hex16(span);
        _w.Raw("\"}"u8);
    }

    /// <summary>
    /// One attribute. Spans of a kind carry the same keys in the same order, so the text up to the value
    /// (<c>,{"key":"emu.cpu","type":"int64","value":</c>) is remembered per position and reused while the key matches.
    /// </summary>
    private void Tag(int position, in SpanTag t)
    {
        _w.Raw(Prefix(position, t));
        switch (t.Kind)
        {
            case SpanTagKind.Bool:
                _w.Raw(t.Number != 0 ? "true}"u8 : "false}"u8);
                break;
            case SpanTagKind.Long:
                _w.Number(t.Number);
                _w.Byte((byte)'}');
                break;
            case SpanTagKind.Hex:
                _w.HexText(t.Number);
                _w.Raw("\"}"u8);
                break;
            default:
                _w.String(t.Text ?? "");
                _w.Raw("\"}"u8);
                break;
        }
    }

    private byte[] Prefix(int position, in SpanTag t)
    {
        if (position < _prefixes.Length && ReferenceEquals(_prefixes[position].Key, t.Key) && _prefixes[position].Kind == t.Kind)
            return _prefixes[position].Bytes;
        // Made once per key object, kind and first-or-not (bounded like Utf8Out's strings).
        if (!_prefixesByKey.TryGetValue(t.Key, out var forKey))
        {
            forKey = new byte[]?[8];
            if (_prefixesByKey.Count < Utf8Out.MaxCached) _prefixesByKey[t.Key] = forKey;
        }
        int slot = (int)t.Kind * 2 + (position == 0 ? 0 : 1);
        var bytes = forKey[slot];
        if (bytes is null)
        {
            string type = t.Kind switch
            {
                SpanTagKind.Long => "\"int64\",\"value\":",
                SpanTagKind.Bool => "\"bool\",\"value\":",
                _ => "\"string\",\"value\":\"",
            };
            forKey[slot] = bytes = Encoding.UTF8.GetBytes($"{(position == 0 ? "" : ",")}{{\"key\":\"{JsonEncodedText.Encode(t.Key)}\",\"type\":{type}");
        }
        if (position < _prefixes.Length) _prefixes[position] = (t.Key, t.Kind, bytes);
        return bytes;
    }

    /// <summary>Close the document and move it into place.</summary>
    public void Complete()
    {
        if (_done) return;
        _done = true;
        _w.Raw("]}"u8);
        _w.Flush();
        _out.Complete();
        _file.Commit();
    }

    /// <summary>Without <see cref="Complete"/> (an aborted run's caller chose not to keep it): remove the partial file.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _out.Dispose();
        _file.Dispose();
    }
}
