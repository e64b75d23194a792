using System.Globalization;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// OTLP JSON lines, as the OpenTelemetry collector's file exporter writes them: one ExportTraceServiceRequest per
/// line (here one trace per line), a resource per emulated CPU (service.name "cpu-N", emu.node), scope "DistEmu",
/// ids in hex, times in Unix ns as strings. Streamed to PATH.tmp-PID and renamed on completion.
/// </summary>
public sealed class OtlpJsonLinesFile : ITraceSink, IDisposable
{
    private readonly AtomicFile _file;
    private readonly long _epochNs;

    public OtlpJsonLinesFile(string path, DateTimeOffset epoch)
    {
        _file = new AtomicFile(path);
        _epochNs = epoch.ToUnixTimeMilliseconds() * 1_000_000;
    }

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        using (var w = new Utf8JsonWriter(_file.Stream))
        {
            w.WriteStartObject();
            w.WriteStartArray("resourceSpans");
            foreach (var group in trace.GroupBy(s => (s.Process, s.Node)))
            {
                w.WriteStartObject();
                w.WriteStartObject("resource");
                w.WriteStartArray("attributes");
                Attr(w, "service.name", group.Key.Process);
                Attr(w, "emu.node", (long)group.Key.Node);
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteStartArray("scopeSpans");
                w.WriteStartObject();
                w.WriteStartObject("scope");
                w.WriteString("name", "DistEmu");
                w.WriteEndObject();
                w.WriteStartArray("spans");
                foreach (var s in group)
                {
                    w.WriteStartObject();
                    w.WriteString("traceId", s.Trace.ToString());
                    w.WriteString("spanId", s.SpanId.ToString("x16"));
                    if (s.ParentId != 0) w.WriteString("parentSpanId", s.ParentId.ToString("x16"));
                    w.WriteString("name", s.Name);
                    w.WriteNumber("kind", 1);
                    w.WriteString("startTimeUnixNano", (_epochNs + s.StartNs).ToString(CultureInfo.InvariantCulture));
                    w.WriteString("endTimeUnixNano", (_epochNs + s.EndNs).ToString(CultureInfo.InvariantCulture));
                    w.WriteStartArray("attributes");
                    foreach (var (k, v) in s.Tags) Attr(w, k, v);
                    w.WriteEndArray();
                    w.WriteStartArray("links");
                    foreach (var l in s.Links)
                    {
                        w.WriteStartObject();
                        w.WriteString("traceId", l.Trace.ToString());
                        w.WriteString("spanId", l.SpanId.ToString("x16"));
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        _file.Stream.WriteByte((byte)'\n');
    }

    private static void Attr(Utf8JsonWriter w, string key, object value)
    {
        w.WriteStartObject();
        w.WriteString("key", key);
        w.WriteStartObject("value");
        switch (value)
        {
            case bool b: w.WriteBoolean("boolValue", b); break;
            case long or int: w.WriteString("intValue", Convert.ToInt64(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture)); break;
            default: w.WriteString("stringValue", Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
        w.WriteEndObject();
        w.WriteEndObject();
    }

    public void Complete() => _file.Commit();

    public void Dispose() => _file.Dispose();
}
