namespace DistEmu.Telemetry;

/// <summary>
/// --trace-window NS, the machine timeline: every trace that began in the emulated window [k·NS, (k+1)·NS), whatever
/// its CPU, goes into one trace of that window, under a root span of the window and one span per CPU (service "cpu-3",
/// covering the window and the spans that began in it), so Jaeger shows the CPUs as lanes one above the other, on one
/// time axis. A trace stays whole in the window its root began in; its original id stays in <c>emu.trace</c>.
/// Traces come in the order they end (sim) or by spill bucket (orleans), so they are spilled to a temporary file as
/// they come and written window by window at the end; memory holds the offsets of the traces (8 bytes each) and one
/// window's spans.
/// </summary>
public sealed class TraceWindows : ITraceFile, IDisposable
{
    /// <summary>The high half of every window's trace id: marks it as a window, and keeps it apart from the run's ids.</summary>
    private const ulong WindowTraceHi = 0x77696e646f770000; // "window\0\0"

    private readonly JaegerJsonFile _inner;
    private readonly long _windowNs;
    private readonly string _spillPath = Path.Combine(Path.GetTempPath(), $"distemu-windows-{Guid.NewGuid():N}.spans");
    private readonly FileStream _spill;
    private readonly BinaryWriter _writer;
    private readonly SortedDictionary<long, List<long>> _windows = new();
    private bool _done;

    public TraceWindows(JaegerJsonFile inner, long windowNs)
    {
        if (windowNs < 1) throw new ArgumentOutOfRangeException(nameof(windowNs), "--trace-window: must be >= 1 ns");
        _inner = inner;
        _windowNs = windowNs;
        _spill = new FileStream(_spillPath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.DeleteOnClose);
        _writer = new BinaryWriter(_spill);
    }

    public IReadOnlyList<string> Files => _inner.Files;
    public long Windows => _windows.Count;

    public void Write(IReadOnlyList<EmuSpan> trace)
    {
        var root = trace[0];
        foreach (var s in trace)
            if (s.ParentId == 0) root = s;
        long window = Math.DivRem(root.EmulatedStartNs, _windowNs, out long rem) - (rem < 0 ? 1 : 0);
        if (!_windows.TryGetValue(window, out var offsets)) _windows[window] = offsets = new List<long>();
        offsets.Add(_spill.Position);
        EmuSpanCodec.Write(_writer, trace);
    }

    public void Complete()
    {
        if (_done) return;
        _done = true;
        _writer.Flush();
        var reader = new BinaryReader(_spill);
        var codec = new EmuSpanCodec();
        var spans = new List<EmuSpan>();
        foreach (var (window, offsets) in _windows)
        {
            spans.Clear();
            foreach (long offset in offsets)
            {
                _spill.Position = offset;
                codec.Read(reader, spans);
            }
            _inner.Write(Window(window, spans));
        }
        _writer.Dispose();
        _inner.Complete();
    }

    /// <summary>One window's trace: its root, a lane span per process, and the window's traces re-parented under their lanes.</summary>
    private List<EmuSpan> Window(long window, List<EmuSpan> spans)
    {
        var id = new TraceId(WindowTraceHi, (ulong)window);
        long from = window * _windowNs, to = from + _windowNs;
        var inWindow = new HashSet<ulong>(spans.Select(s => s.SpanId));
        var lanes = new SortedDictionary<(int Cpu, string Process), EmuSpan>();
        ulong rootId = Lane(id, 0);
        var root = new EmuSpan { Trace = id, SpanId = rootId, Name = $"window {from}..{to} ns", StartNs = from, EndNs = to, Process = "machine" };
        var result = new List<EmuSpan>(spans.Count + 8) { root };
        foreach (var s in spans)
        {
            var key = (EmuSpan.CpuOf(s.Process) is var cpu && cpu >= 0 ? cpu : int.MaxValue, s.Process);
            if (!lanes.TryGetValue(key, out var lane))
            {
                lane = new EmuSpan { Trace = id, SpanId = Lane(id, lanes.Count + 1), ParentId = rootId, Name = s.Process, StartNs = from, EndNs = to, Process = s.Process, Node = s.Node };
                lanes[key] = lane;
            }
            lane.EndNs = Math.Max(lane.EndNs, s.EndNs);
            root.EndNs = Math.Max(root.EndNs, s.EndNs);
            var original = s.Trace;
            s.Trace = id;
            if (s.ParentId == 0) s.ParentId = lane.SpanId;
            s.Tag("emu.trace", original.ToString());
            // A link into a trace of another window would be one the UI cannot follow: the Jaeger writer makes it a tag.
            for (int i = 0; i < s.Links.Count; i++)
                if (s.Links[i].Trace == original || inWindow.Contains(s.Links[i].SpanId))
                    s.Links[i] = s.Links[i] with { Trace = id };
            result.Add(s);
        }
        foreach (var lane in lanes.Values)
        {
            lane.EmulatedDurationNs = lane.EndNs - lane.StartNs;
            lane.Tag("emu.cpu", (long)EmuSpan.CpuOf(lane.Process)).Tag(EmuSpan.StartKey, lane.StartNs);
        }
        root.EmulatedDurationNs = root.EndNs - root.StartNs;
        root.Tag("emu.window", window).Tag(EmuSpan.StartKey, from).Tag("emu.window_ns", _windowNs).Tag("emu.cpus", (long)lanes.Count);
        result.InsertRange(1, lanes.Values);
        return result;
    }

    /// <summary>Span ids of the window's own spans, apart from the run's (SplitMix64 of the window and the lane).</summary>
    private static ulong Lane(TraceId window, int lane)
    {
        ulong z = unchecked(window.Lo * 0x9E3779B97F4A7C15UL + (ulong)lane + 0x5851F42D4C957F2DUL);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        z ^= z >> 31;
        return z == 0 ? 1 : z;
    }

    public void Dispose()
    {
        _writer.Dispose();
        _inner.Dispose();
    }
}
