using System.Text;
using System.Text.Json;

namespace DistEmu.Telemetry;

/// <summary>What one Jaeger file of a split run holds: its traces' emulated time range, CPUs, and the traces worth opening first.</summary>
internal sealed class JaegerPart(int number, string file)
{
    public int Number { get; } = number;
    public string File { get; } = file;
    public long Traces { get; private set; }
    public long Spans { get; private set; }
    public long EmuStartNs { get; private set; } = long.MaxValue;
    public long EmuEndNs { get; private set; } = long.MinValue;
    public long Retried { get; private set; }
    public long Violations { get; private set; }
    private readonly SortedSet<int> _cpus = new();

    public void Add(IReadOnlyList<EmuSpan> trace)
    {
        Traces++;
        Spans += trace.Count;
        bool retried = false, violated = false;
        foreach (var s in trace)
        {
            long start = s.EmulatedStartNs;
            EmuStartNs = Math.Min(EmuStartNs, start);
            EmuEndNs = Math.Max(EmuEndNs, start + s.EmulatedDurationNs);
            int cpu = EmuSpan.CpuOf(s.Process);
            if (cpu >= 0) _cpus.Add(cpu);
            foreach (ref readonly var t in s.Attributes)
            {
                if (t.Kind != SpanTagKind.Bool || t.Number == 0) continue;
                if (t.Key == "emu.retry") retried = true;
                else if (t.Key == EmuSpan.ErrorKey) violated = true;
            }
        }
        if (retried) Retried++;
        if (violated) Violations++;
    }

    /// <summary>The CPUs as the kernel prints a cpulist (/sys/devices/system/cpu/online): "0-3,8".</summary>
    public string CpuList()
    {
        var sb = new StringBuilder();
        int from = -2, to = -2;
        foreach (int c in _cpus)
        {
            if (c == to + 1)
            {
                to = c;
                continue;
            }
            Range(sb, from, to);
            from = to = c;
        }
        Range(sb, from, to);
        return sb.ToString();
    }

    private static void Range(StringBuilder sb, int from, int to)
    {
        if (from < 0) return;
        if (sb.Length > 0) sb.Append(',');
        sb.Append(from);
        if (to > from) sb.Append('-').Append(to);
    }

    public void Write(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("file", File);
        w.WriteNumber("traces", Traces);
        w.WriteNumber("spans", Spans);
        w.WriteNumber("emu_start_ns", Traces == 0 ? 0 : EmuStartNs);
        w.WriteNumber("emu_end_ns", Traces == 0 ? 0 : EmuEndNs);
        w.WriteString("cpus", CpuList());
        w.WriteNumber("retried", Retried);
        w.WriteNumber("violations", Violations);
        w.WriteEndObject();
    }
}

/// <summary>PATH.index.json of a split Jaeger trace: one entry per file, so a reader picks the file of a time or a race.</summary>
internal static class JaegerIndex
{
    public static void Write(string path, IReadOnlyList<JaegerPart> parts, TraceFileOptions o)
    {
        var file = new AtomicFile(path);
        try
        {
            using (var w = new Utf8JsonWriter(file.Stream, new JsonWriterOptions { Indented = true }))
            {
                w.WriteStartObject();
                w.WriteString("format", "jaeger-json");
                w.WriteString("run", o.Run.Describe());
                w.WriteNumber("traces_per_file", o.Split);
                w.WriteNumber("time_scale", o.TimeScale);
                if (o.WindowNs is { } window) w.WriteNumber("window_ns", window);
                w.WriteNumber("traces", parts.Sum(p => p.Traces));
                w.WriteNumber("spans", parts.Sum(p => p.Spans));
                w.WriteStartArray("files");
                foreach (var p in parts) p.Write(w);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            file.Commit();
        }
        finally
        {
            file.Dispose();
        }
    }
}
