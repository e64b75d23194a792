using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// Jaeger's JSON trace format, the one Jaeger UI's "Upload JSON file" opens without a backend:
/// <c>{"data":[{"traceID", "spans":[…], "processes":{…}}]}</c>, times in µs, nesting only through
/// <c>references</c> (CHILD_OF, FOLLOWS_FROM), one process per emulated CPU (service "cpu-N", tag node).
/// Traces are streamed to PATH.tmp-PID as they finish (memory stays bounded) and renamed to PATH on completion.
/// </summary>
public sealed class JaegerJsonFile : ITraceSink, IDisposable
{
    private readonly AtomicFile _file;
    private readonly Utf8JsonWriter _w;
    private readonly DateTimeOffset _epoch;
    private bool _done;

    /// <summary>Opens the temporary file at once, so an unwritable path fails before the run starts.</summary>
    public JaegerJsonFile(string path, DateTimeOffset epoch)
    {
        _file = new AtomicFile(path);
        _w = new Utf8JsonWriter(_file.Stream);
        _epoch = epoch;
        _w.WriteStartObject();
        _w.WriteStartArray("data");
    }

    public long Traces { get; private set; }

    private long Micros(long ns) => _epoch.ToUnixTimeMilliseconds() * 1000 + ns / 1000;

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        var processes = new Dictionary<string, (string Id, int Node)>();
        foreach (var s in trace)
            if (!processes.ContainsKey(s.Process))
                processes[s.Process] = ($"p{processes.Count + 1}", s.Node);
        _w.WriteStartObject();
        _w.WriteString("traceID", trace[0].Trace.ToString());
        _w.WriteStartArray("spans");
        foreach (var s in trace)
        {
            _w.WriteStartObject();
            _w.WriteString("traceID", s.Trace.ToString());
            _w.WriteString("spanID", s.SpanId.ToString("x16"));
            _w.WriteString("operationName", s.Name);
            _w.WriteStartArray("references");
            if (s.ParentId != 0) Reference("CHILD_OF", s.Trace, s.ParentId);
            foreach (var l in s.Links) Reference(l.Type == SpanRefType.ChildOf ? "CHILD_OF" : "FOLLOWS_FROM", l.Trace, l.SpanId);
            _w.WriteEndArray();
            _w.WriteNumber("startTime", Micros(s.StartNs));
            _w.WriteNumber("duration", Math.Max(0, Micros(s.EndNs) - Micros(s.StartNs)));
            _w.WriteStartArray("tags");
            foreach (var (k, v) in s.Tags) Tag(k, v);
            Tag("emu.duration_ns", s.DurationNs);
            _w.WriteEndArray();
            _w.WriteStartArray("logs");
            _w.WriteEndArray();
            _w.WriteString("processID", processes[s.Process].Id);
            _w.WriteEndObject();
        }
        _w.WriteEndArray();
        _w.WriteStartObject("processes");
        foreach (var (name, (id, node)) in processes)
        {
            _w.WriteStartObject(id);
            _w.WriteString("serviceName", name);
            _w.WriteStartArray("tags");
            Tag("node", (long)node);
            _w.WriteEndArray();
            _w.WriteEndObject();
        }
        _w.WriteEndObject();
        _w.WriteEndObject();
        Traces++;
        if (_w.BytesPending > 1 << 16) _w.Flush();
    }

    private void Reference(string type, TraceId trace, ulong span)
    {
        _w.WriteStartObject();
        _w.WriteString("refType", type);
        _w.WriteString("traceID", trace.ToString());
        _w.WriteString("spanID", span.ToString("x16"));
        _w.WriteEndObject();
    }

    private void Tag(string key, object value)
    {
        _w.WriteStartObject();
        _w.WriteString("key", key);
        switch (value)
        {
            case bool b:
                _w.WriteString("type", "bool");
                _w.WriteBoolean("value", b);
                break;
            case long or int:
                _w.WriteString("type", "int64");
                _w.WriteNumber("value", Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
            default:
                _w.WriteString("type", "string");
                _w.WriteString("value", Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
        }
        _w.WriteEndObject();
    }

    /// <summary>Close the document and move it into place.</summary>
    public void Complete()
    {
        if (_done) return;
        _done = true;
        _w.WriteEndArray();
        _w.WriteEndObject();
        _w.Flush();
        _file.Commit();
    }

    /// <summary>Without <see cref="Complete"/> (an aborted run's caller chose not to keep it): remove the partial file.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _w.Dispose();
        _file.Dispose();
    }
}
