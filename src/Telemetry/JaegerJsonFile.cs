using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>
/// Jaeger's JSON trace format, the one Jaeger UI's "Upload JSON file" opens without a backend:
/// <c>{"data":[{"traceID", "spans":[…], "processes":{…}}]}</c>, times in µs, nesting only through
/// <c>references</c> (CHILD_OF, FOLLOWS_FROM), one process per emulated CPU (service "cpu-N", tags node, cpu and the
/// run's machine, policy, engine and seed). Traces are streamed to PATH.tmp-PID as they finish (memory stays bounded;
/// the writes happen on a thread of their own, <see cref="BackgroundFileWriter"/>) and renamed to PATH on completion.
/// The upload freezes a browser tab for minutes on tens of thousands of traces, so past <see cref="TraceFileOptions.Split"/>
/// traces the run goes to PATH-0001.json, PATH-0002.json … with PATH.index.json saying what each holds (<see cref="JaegerIndex"/>).
/// A FOLLOWS_FROM into a trace that is not earlier in the same file would be a link the UI cannot follow (without a
/// backend it opens a page that 404s): it becomes an <c>emu.follows_from</c> tag naming the trace and span instead.
/// The output is compact JSON (what System.Text.Json writes), assembled from constant fragments with ids and numbers
/// formatted in place: no string per span.
/// </summary>
public sealed class JaegerJsonFile : ITraceFile, IDisposable
{
    public const string FollowsFromKey = "emu.follows_from";

    private readonly string _path;
    private readonly TraceFileOptions _o;
    private readonly long _epochMicros;
    private readonly byte[] _runTags;
    private readonly List<(string Name, int Node)> _processes = new(4);
    private readonly (string? Key, SpanTagKind Kind, byte[] Bytes)[] _prefixes = new (string?, SpanTagKind, byte[])[16];
    private readonly Dictionary<string, byte[]?[]> _prefixesByKey = new(ReferenceEqualityComparer.Instance);
    /// <summary>The traces already in the open file: the only ones a FOLLOWS_FROM may point into.</summary>
    private readonly HashSet<TraceId> _inFile = new();
    private readonly List<JaegerPart> _parts = new();
    private AtomicFile _file;
    private BackgroundFileWriter _out;
    private Utf8Out _w;
    private bool _first = true;
    private bool _done;

    /// <summary>Opens the temporary file at once, so an unwritable path fails before the run starts.</summary>
    public JaegerJsonFile(string path, DateTimeOffset epoch, TraceFileOptions? options = null)
    {
        _path = Path.GetFullPath(path);
        _o = options ?? new TraceFileOptions();
        _epochMicros = epoch.ToUnixTimeMilliseconds() * 1000;
        _runTags = RunTags(_o);
        (_file, _out, _w) = OpenPart();
    }

    public long Traces { get; private set; }

    /// <summary>The files written (after <see cref="Complete"/>): PATH, or the parts and then the index.</summary>
    public IReadOnlyList<string> Files { get; private set; } = [];

    /// <summary>PATH-0001.json for PATH.json: the name of part <paramref name="number"/>.</summary>
    public static string PartPath(string path, int number)
    {
        string stem = path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? path[..^5] : path;
        return $"{stem}-{number.ToString("D4", CultureInfo.InvariantCulture)}.json";
    }

    /// <summary>PATH.index.json for PATH.json.</summary>
    public static string IndexPath(string path) =>
        (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? path[..^5] : path) + ".index.json";

    private (AtomicFile, BackgroundFileWriter, Utf8Out) OpenPart()
    {
        var part = new JaegerPart(_parts.Count + 1, Path.GetFileName(PartPath(_path, _parts.Count + 1)));
        _parts.Add(part);
        var file = new AtomicFile(PartPath(_path, part.Number));
        var output = new BackgroundFileWriter(file.Stream);
        var w = new Utf8Out(output);
        w.Raw("{\"data\":["u8);
        _first = true;
        _inFile.Clear();
        return (file, output, w);
    }

    private void ClosePart(string? commitAs)
    {
        _w.Raw("]}"u8);
        _w.Flush();
        _out.Complete();
        if (commitAs is null) _file.Commit();
        else _file.CommitAs(commitAs);
    }

    /// <summary>Displayed µs of an emulated ns: the epoch plus ns × K / 1000 (--trace-time-scale K).</summary>
    private long Micros(long ns) => _epochMicros + ns * _o.TimeScale / 1000;

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        if (_o.Split > 0 && _parts[^1].Traces == _o.Split)
        {
            ClosePart(null);
            (_file, _out, _w) = OpenPart();
        }
        _parts[^1].Add(trace);
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
            bool firstRef = true, unreachable = false;
            if (s.ParentId != 0) Reference(ref firstRef, SpanRefType.ChildOf, s.Trace, s.ParentId);
            foreach (var l in s.Links)
            {
                if (l.Trace == s.Trace || _inFile.Contains(l.Trace)) Reference(ref firstRef, l.Type, l.Trace, l.SpanId);
                else unreachable = true;
            }
            w.Raw("],\"startTime\":"u8);
            w.Number(Micros(s.StartNs));
            w.Raw(",\"duration\":"u8);
            w.Number(Math.Max(0, Micros(s.EndNs) - Micros(s.StartNs)));
            w.Raw(",\"tags\":["u8);
            var tags = s.Attributes;
            for (int k = 0; k < tags.Length; k++) Tag(k, tags[k]);
            w.Raw(tags.Length == 0 ? "{\"key\":\"emu.duration_ns\",\"type\":\"int64\",\"value\":"u8 : ",{\"key\":\"emu.duration_ns\",\"type\":\"int64\",\"value\":"u8);
            w.Number(s.EmulatedDurationNs);
            w.Byte((byte)'}');
            if (unreachable)
            {
                foreach (var l in s.Links)
                {
                    if (l.Trace == s.Trace || _inFile.Contains(l.Trace)) continue;
                    // "TRACE/SPAN": what Jaeger's search box finds (paste the trace id), and the span in it.
                    w.Raw(",{\"key\":\"emu.follows_from\",\"type\":\"string\",\"value\":\""u8);
                    w.Hex32(l.Trace);
                    w.Byte((byte)'/');
                    w.Hex16(l.SpanId);
                    w.Raw("\"}"u8);
                }
            }
            w.Raw("],\"logs\":[],\"processID\":\"p"u8);
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
            w.Byte((byte)'}');
            int cpu = EmuSpan.CpuOf(_processes[p].Name);
            if (cpu >= 0)
            {
                w.Raw(",{\"key\":\"cpu\",\"type\":\"int64\",\"value\":"u8);
                w.Number(cpu);
                w.Byte((byte)'}');
            }
            w.Raw(_runTags);
            w.Raw("]}"u8);
        }
        w.Raw("}}"u8);
        _inFile.Add(trace[0].Trace);
        Traces++;
    }

    /// <summary>The run's process tags, the same for every process: encoded once.</summary>
    private static byte[] RunTags(TraceFileOptions o)
    {
        var sb = new StringBuilder();
        void Text(string key, string? value)
        {
            if (value != null) sb.Append($",{{\"key\":\"{key}\",\"type\":\"string\",\"value\":\"{JsonEncodedText.Encode(value)}\"}}");
        }
        void Number(string key, long? value)
        {
            if (value != null) sb.Append(CultureInfo.InvariantCulture, $",{{\"key\":\"{key}\",\"type\":\"int64\",\"value\":{value}}}");
        }
        Text("machine", o.Run.Machine);
        Text("policy", o.Run.Policy);
        Text("engine", o.Run.Engine);
        Number("seed", o.Run.Seed);
        // A scaled file says so where every span's process is shown: its µs are not emulated µs.
        if (o.TimeScale != 1) Number("time_scale", o.TimeScale);
        if (o.WindowNs is { } window) Number("window_ns", window);
        return Encoding.UTF8.GetBytes(sb.ToString());
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

    /// <summary>Close the document and move it into place: PATH if it is the only part, else the last part and the index.</summary>
    public void Complete()
    {
        if (_done) return;
        _done = true;
        if (_parts.Count == 1)
        {
            ClosePart(_path);
            // An index left by an earlier split run into this name would describe files this run did not write.
            File.Delete(IndexPath(_path));
            Files = [_path];
            return;
        }
        ClosePart(null);
        string dir = Path.GetDirectoryName(_path)!;
        JaegerIndex.Write(IndexPath(_path), _parts, _o);
        // PATH itself would be an earlier run's: this run is the parts.
        File.Delete(_path);
        Files = [.. _parts.Select(p => Path.Combine(dir, p.File)), IndexPath(_path)];
    }

    /// <summary>Without <see cref="Complete"/> (an aborted run's caller chose not to keep it): remove the partial file.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _out.Dispose();
        _file.Dispose();
        for (int i = 0; i < _parts.Count - 1; i++) File.Delete(PartPath(_path, _parts[i].Number)); // never a part without the rest
    }
}
