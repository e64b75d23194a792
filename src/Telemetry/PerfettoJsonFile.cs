namespace DistEmu.Telemetry;

/// <summary>
/// The emulated timeline as Chrome trace-event JSON, the format kernel engineers open in Perfetto (ui.perfetto.dev,
/// "Open trace file") or chrome://tracing: <c>{"traceEvents":[…]}</c> with one complete ("X") event per span, the run as
/// one process (named after the machine, policy, engine and seed) and each emulated CPU a thread, "cpu3", sorted by
/// number. ts and dur are µs with three decimals, so every emulated ns shows. args carry the span's attributes and its
/// trace and span ids (the same as in the Jaeger file of the run). Streamed like the Jaeger file, and renamed into place.
/// </summary>
/// <remarks>
/// Perfetto, per the JSON format's rule, shows the complete events of one thread only if they nest perfectly. A CPU's
/// spans do not always: a lock span runs from the request to the release, so two holds can overlap without one inside
/// the other. Such a span goes to the CPU's next track ("cpu3 #2"), the first on which it nests.
/// </remarks>
public sealed class PerfettoJsonFile : ITraceFile, IDisposable
{
    /// <summary>Tracks beyond a CPU's first get tids this far apart (more than any emulated CPU count).</summary>
    private const long LevelStride = 1_000_000;

    private readonly AtomicFile _file;
    private readonly BackgroundFileWriter _out;
    private readonly Utf8Out _w;
    private readonly Dictionary<(string Process, int Level), long> _tids = new();
    /// <summary>Per process, per track: the spans still open there (each inside the one below it).</summary>
    private readonly Dictionary<string, List<List<(long Start, long End)>>> _levels = new();
    private readonly List<EmuSpan> _order = new();
    private readonly List<int> _placed = new();
    private int _otherProcesses;
    private bool _done;

    public PerfettoJsonFile(string path, TraceFileOptions? options = null)
    {
        var o = options ?? new TraceFileOptions();
        _file = new AtomicFile(path);
        Files = [Path.GetFullPath(path)];
        _out = new BackgroundFileWriter(_file.Stream);
        _w = new Utf8Out(_out);
        string name = o.Run.Describe() is { Length: > 0 } run ? $"distemu: {run}" : "distemu";
        _w.Raw("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":1,\"tid\":0,\"args\":{\"name\":\""u8);
        _w.String(name);
        _w.Raw("\"}}"u8);
    }

    public IReadOnlyList<string> Files { get; }
    public long Events { get; private set; }

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        // Outer spans first (earlier start, then longer), so a span is placed after every span that may contain it.
        _order.Clear();
        _order.AddRange(trace);
        _order.Sort((a, b) => a.StartNs != b.StartNs ? a.StartNs.CompareTo(b.StartNs)
            : a.EndNs != b.EndNs ? b.EndNs.CompareTo(a.EndNs) : (a.ParentId == 0 ? 0 : 1).CompareTo(b.ParentId == 0 ? 0 : 1));
        foreach (var s in _order)
        {
            int level = Place(s);
            Event(s, Tid(s.Process, level));
        }
    }

    /// <summary>
    /// The first track (level) of the span's CPU on which it nests in what is open there. Traces of one task can overlap
    /// (a move_pages call's migrations and the task's next fault), so the open spans are kept across traces. Traces come
    /// in about the order they end; one that comes far out of order may still meet a span already closed off a track.
    /// </summary>
    private int Place(EmuSpan s)
    {
        if (!_levels.TryGetValue(s.Process, out var levels))
            _levels[s.Process] = levels = new();
        for (int level = 0; ; level++)
        {
            // A task's migrations overlap one another (one move_pages call migrates many folios at once): as many tracks as needed.
            if (level == levels.Count) levels.Add(new List<(long, long)>());
            var stack = levels[level];
            while (stack.Count > 0 && stack[^1].End <= s.StartNs) stack.RemoveAt(stack.Count - 1);
            if (stack.Count == 0 || (stack[^1].Start <= s.StartNs && s.EndNs <= stack[^1].End))
            {
                stack.Add((s.StartNs, s.EndNs));
                return level;
            }
        }
    }

    private long Tid(string process, int level)
    {
        if (_tids.TryGetValue((process, level), out long tid)) return tid;
        int cpu = EmuSpan.CpuOf(process);
        // tid = CPU + 1: Perfetto takes tid 0 for the idle task (swapper).
        long baseTid = cpu >= 0 ? cpu + 1 : 100_000 + _otherProcesses++;
        if (level > 0 && _tids.TryGetValue((process, 0), out long first)) baseTid = first;
        tid = baseTid + level * LevelStride;
        _tids[(process, level)] = tid;
        string name = (cpu >= 0 ? $"cpu{cpu}" : process) + (level > 0 ? $" #{level + 1}" : "");
        _w.Raw(",{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":"u8);
        _w.Number(tid);
        _w.Raw(",\"args\":{\"name\":\""u8);
        _w.String(name);
        _w.Raw("\"}},{\"ph\":\"M\",\"name\":\"thread_sort_index\",\"pid\":1,\"tid\":"u8);
        _w.Number(tid);
        _w.Raw(",\"args\":{\"sort_index\":"u8);
        _w.Number(tid);
        _w.Raw("}}"u8);
        return tid;
    }

    private void Event(EmuSpan s, long tid)
    {
        var w = _w;
        w.Raw(",{\"ph\":\"X\",\"cat\":\"mm\",\"pid\":1,\"tid\":"u8);
        w.Number(tid);
        w.Raw(",\"name\":\""u8);
        w.String(s.Name);
        w.Raw("\",\"ts\":"u8);
        Micros(s.StartNs);
        w.Raw(",\"dur\":"u8);
        Micros(Math.Max(0, s.EndNs - s.StartNs));
        w.Raw(",\"args\":{\"trace\":\""u8);
        w.Hex32(s.Trace);
        w.Raw("\",\"span\":\""u8);
        w.Hex16(s.SpanId);
        w.Byte((byte)'"');
        foreach (ref readonly var t in s.Attributes)
        {
            w.Raw(",\""u8);
            w.String(t.Key);
            w.Raw("\":"u8);
            switch (t.Kind)
            {
                case SpanTagKind.Long:
                    w.Number(t.Number);
                    break;
                case SpanTagKind.Bool:
                    w.Raw(t.Number != 0 ? "true"u8 : "false"u8);
                    break;
                case SpanTagKind.Hex:
                    w.Byte((byte)'"');
                    w.HexText(t.Number);
                    w.Byte((byte)'"');
                    break;
                default:
                    w.Byte((byte)'"');
                    w.String(t.Text ?? "");
                    w.Byte((byte)'"');
                    break;
            }
        }
        w.Raw(",\"emu.duration_ns\":"u8);
        w.Number(s.EmulatedDurationNs);
        w.Raw("}}"u8);
        Events++;
    }

    /// <summary>ns as µs with three decimals ("12.345"): exact, and no floating point on the way.</summary>
    private void Micros(long ns)
    {
        _w.Number(ns / 1000);
        long frac = ns % 1000;
        if (frac == 0) return;
        Span<byte> digits = stackalloc byte[4];
        digits[0] = (byte)'.';
        digits[1] = (byte)('0' + frac / 100);
        digits[2] = (byte)('0' + frac / 10 % 10);
        digits[3] = (byte)('0' + frac % 10);
        _w.Raw(digits);
    }

    public void Complete()
    {
        if (_done) return;
        _done = true;
        _w.Raw("]}"u8);
        _w.Flush();
        _out.Complete();
        _file.Commit();
    }

    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _out.Dispose();
        _file.Dispose();
    }
}
