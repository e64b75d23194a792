using System.Globalization;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// OTLP JSON lines, as the OpenTelemetry collector's file exporter writes them: one ExportTraceServiceRequest per
/// line (here one trace per line), a resource per emulated CPU (service.name "cpu-N", emu.node), scope "DistEmu",
/// ids in hex, times in Unix ns as strings. Streamed to PATH.tmp-PID (written on a thread of its own,
/// <see cref="BackgroundFileWriter"/>) and renamed on completion; one JSON writer for every line, ids and numbers
/// formatted straight into its buffer.
/// </summary>
public sealed class OtlpJsonLinesFile : ITraceFile, IDisposable
{
    private static readonly JsonEncodedText ResourceSpans = JsonEncodedText.Encode("resourceSpans"), Resource = JsonEncodedText.Encode("resource"),
        Attributes = JsonEncodedText.Encode("attributes"), ScopeSpans = JsonEncodedText.Encode("scopeSpans"), Scope = JsonEncodedText.Encode("scope"),
        NameKey = JsonEncodedText.Encode("name"), DistEmu = JsonEncodedText.Encode("DistEmu"), Spans = JsonEncodedText.Encode("spans"),
        TraceIdKey = JsonEncodedText.Encode("traceId"), SpanIdKey = JsonEncodedText.Encode("spanId"), ParentSpanId = JsonEncodedText.Encode("parentSpanId"),
        Kind = JsonEncodedText.Encode("kind"), Start = JsonEncodedText.Encode("startTimeUnixNano"), End = JsonEncodedText.Encode("endTimeUnixNano"),
        Links = JsonEncodedText.Encode("links"), Key = JsonEncodedText.Encode("key"), Value = JsonEncodedText.Encode("value"),
        BoolValue = JsonEncodedText.Encode("boolValue"), IntValue = JsonEncodedText.Encode("intValue"), StringValue = JsonEncodedText.Encode("stringValue"),
        ServiceName = JsonEncodedText.Encode("service.name"), EmuNode = JsonEncodedText.Encode("emu.node"),
        Status = JsonEncodedText.Encode("status"), Code = JsonEncodedText.Encode("code"), Message = JsonEncodedText.Encode("message");

    private readonly AtomicFile _file;
    private readonly BackgroundFileWriter _out;
    private readonly Utf8JsonWriter _w;
    private readonly long _epochNs;
    private readonly JsonText _text = new();
    private readonly List<(string Process, int Node)> _groups = new(4);

    public OtlpJsonLinesFile(string path, DateTimeOffset epoch)
    {
        Files = [Path.GetFullPath(path)];
        _file = new AtomicFile(path);
        _out = new BackgroundFileWriter(_file.Stream);
        _w = new Utf8JsonWriter(_out, new JsonWriterOptions { SkipValidation = true });
        _epochNs = epoch.ToUnixTimeMilliseconds() * 1_000_000;
    }

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        // One resource per (process, node), in order of first appearance.
        _groups.Clear();
        foreach (var s in trace)
            if (!_groups.Contains((s.Process, s.Node))) _groups.Add((s.Process, s.Node));
        Span<byte> hex = stackalloc byte[32];
        _w.WriteStartObject();
        _w.WriteStartArray(ResourceSpans);
        foreach (var (process, node) in _groups)
        {
            _w.WriteStartObject();
            _w.WriteStartObject(Resource);
            _w.WriteStartArray(Attributes);
            Attr(ServiceName, process);
            IntAttr(EmuNode, node);
            _w.WriteEndArray();
            _w.WriteEndObject();
            _w.WriteStartArray(ScopeSpans);
            _w.WriteStartObject();
            _w.WriteStartObject(Scope);
            _w.WriteString(NameKey, DistEmu);
            _w.WriteEndObject();
            _w.WriteStartArray(Spans);
            foreach (var s in trace)
            {
                if (s.Node != node || s.Process != process) continue;
                _w.WriteStartObject();
                s.Trace.FormatHex(hex);
                _w.WriteString(TraceIdKey, hex);
                _w.WriteString(SpanIdKey, JsonText.Hex16(s.SpanId, hex));
                if (s.ParentId != 0) _w.WriteString(ParentSpanId, JsonText.Hex16(s.ParentId, hex));
                _w.WriteString(NameKey, _text.Encoded(s.Name));
                _w.WriteNumber(Kind, 1);
                NumberText(Start, _epochNs + s.StartNs);
                NumberText(End, _epochNs + s.EndNs);
                _w.WriteStartArray(Attributes);
                foreach (ref readonly var t in s.Attributes) Attr(t);
                _w.WriteEndArray();
                _w.WriteStartArray(Links);
                foreach (var l in s.Links)
                {
                    _w.WriteStartObject();
                    l.Trace.FormatHex(hex);
                    _w.WriteString(TraceIdKey, hex);
                    _w.WriteString(SpanIdKey, JsonText.Hex16(l.SpanId, hex));
                    _w.WriteEndObject();
                }
                _w.WriteEndArray();
                if (s.ErrorDescription is { } error)
                {
                    // OTLP's STATUS_CODE_ERROR: a fault that met a sanitizer report.
                    _w.WriteStartObject(Status);
                    _w.WriteNumber(Code, 2);
                    _w.WriteString(Message, error);
                    _w.WriteEndObject();
                }
                _w.WriteEndObject();
            }
            _w.WriteEndArray();
            _w.WriteEndObject();
            _w.WriteEndArray();
            _w.WriteEndObject();
        }
        _w.WriteEndArray();
        _w.WriteEndObject();
        _w.Flush();
        _out.GetSpan(1)[0] = (byte)'\n';
        _out.Advance(1);
        _w.Reset();
    }

    /// <summary>OTLP JSON carries 64-bit integers as strings.</summary>
    private void NumberText(JsonEncodedText key, long value)
    {
        Span<byte> digits = stackalloc byte[20];
        value.TryFormat(digits, out int n, default, CultureInfo.InvariantCulture);
        _w.WriteString(key, digits[..n]);
    }

    private void Attr(JsonEncodedText key, string value)
    {
        _w.WriteStartObject();
        _w.WriteString(Key, key);
        _w.WriteStartObject(Value);
        _w.WriteString(StringValue, value);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void IntAttr(JsonEncodedText key, long value)
    {
        _w.WriteStartObject();
        _w.WriteString(Key, key);
        _w.WriteStartObject(Value);
        NumberText(IntValue, value);
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    private void Attr(in SpanTag t)
    {
        _w.WriteStartObject();
        _w.WriteString(Key, _text.Encoded(t.Key));
        _w.WriteStartObject(Value);
        switch (t.Kind)
        {
            case SpanTagKind.Bool: _w.WriteBoolean(BoolValue, t.Number != 0); break;
            case SpanTagKind.Long: NumberText(IntValue, t.Number); break;
            case SpanTagKind.Hex:
                Span<byte> hex = stackalloc byte[24];
                _w.WriteString(StringValue, hex[..t.FormatHex(hex)]);
                break;
            default: _w.WriteString(StringValue, t.Text); break;
        }
        _w.WriteEndObject();
        _w.WriteEndObject();
    }

    public IReadOnlyList<string> Files { get; }

    public void Complete()
    {
        _out.Complete();
        _file.Commit();
    }

    public void Dispose()
    {
        _w.Dispose();
        _out.Dispose();
        _file.Dispose();
    }
}
