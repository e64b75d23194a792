using System.Globalization;
using System.Text.Json;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Telemetry.Tests;

/// <summary>
/// The Jaeger file as a person opens it: split into parts Jaeger UI's upload loads in seconds with an index of what
/// each holds, process tags naming the run, a time scale that makes sub-µs spans visible, and the machine timeline
/// (--trace-window). Each file is parsed back and checked against what the recorder measured.
/// </summary>
public sealed class TraceFileLayoutTests : IDisposable
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
    private static readonly RunIdentity Run = new() { Machine = "small", Policy = "merged", Engine = "sim", Seed = 1 };
    private readonly string _dir = Directory.CreateTempSubdirectory("distemu-layout-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>migrate-munmap on small under the sim engine into a file sink of the given options.</summary>
    private (string Path, ITraceFile File, RunResult Result) Record(string name, TraceFileOptions o, int ops = 300)
    {
        var path = Path.Combine(_dir, name);
        var file = TraceFiles.Open(path, Epoch, o);
        var recorder = new SpanRecorder(file, new TracingOptions { Policy = "merged" });
        var result = SimRun.Run(new SimRunOptions { Machine = Scenarios.Small(FaultPolicy.Merged), Workload = "migrate-munmap", OpsPerTask = ops, Observer = recorder });
        file.Complete();
        return (path, file, result);
    }

    private static List<JsonElement> Traces(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("data").EnumerateArray().Select(t => t.Clone()).ToList();
    }

    private static Dictionary<string, JsonElement> Tags(JsonElement span) =>
        span.GetProperty("tags").EnumerateArray().GroupBy(t => t.GetProperty("key").GetString()!).ToDictionary(g => g.Key, g => g.First().GetProperty("value"));

    [Fact]
    public void A_run_past_the_split_is_parts_of_at_most_N_traces_with_an_index_of_what_each_holds()
    {
        var (path, file, _) = Record("trace.json", new TraceFileOptions { Split = 100, Run = Run });
        Assert.False(File.Exists(path), "PATH.json is not written when the run is split");
        using var index = JsonDocument.Parse(File.ReadAllText(JaegerJsonFile.IndexPath(path)));
        var entries = index.RootElement.GetProperty("files").EnumerateArray().ToList();
        Assert.True(entries.Count > 2, $"a run of {index.RootElement.GetProperty("traces")} traces in parts of 100");
        Assert.Equal([.. entries.Select(e => Path.Combine(_dir, e.GetProperty("file").GetString()!)), JaegerJsonFile.IndexPath(path)], file.Files);
        long traces = 0;
        foreach (var e in entries)
        {
            var part = Traces(Path.Combine(_dir, e.GetProperty("file").GetString()!));
            var spans = part.SelectMany(t => t.GetProperty("spans").EnumerateArray()).ToList();
            Assert.InRange(part.Count, 1, 100);
            Assert.Equal(part.Count, e.GetProperty("traces").GetInt64());
            Assert.Equal(spans.Count, e.GetProperty("spans").GetInt64());
            long start = spans.Min(s => Tags(s)["emu.start_ns"].GetInt64());
            long end = spans.Max(s => Tags(s)["emu.start_ns"].GetInt64() + Tags(s)["emu.duration_ns"].GetInt64());
            Assert.Equal(start, e.GetProperty("emu_start_ns").GetInt64());
            Assert.Equal(end, e.GetProperty("emu_end_ns").GetInt64());
            // Every reference must be followable in the UI without a backend: into this file, to a trace before it.
            var seen = new HashSet<string>();
            foreach (var t in part)
            {
                seen.Add(t.GetProperty("traceID").GetString()!);
                foreach (var s in t.GetProperty("spans").EnumerateArray())
                    foreach (var r in s.GetProperty("references").EnumerateArray())
                        Assert.Contains(r.GetProperty("traceID").GetString()!, seen);
            }
            traces += part.Count;
        }
        Assert.Equal(index.RootElement.GetProperty("traces").GetInt64(), traces);
    }

    [Fact]
    public void A_run_within_the_split_is_one_file_at_PATH_and_a_stale_index_goes()
    {
        var path = Path.Combine(_dir, "one.json");
        File.WriteAllText(JaegerJsonFile.IndexPath(path), "{}");
        var (_, file, _) = Record("one.json", new TraceFileOptions { Split = 0, Run = Run }, ops: 50);
        Assert.Equal([path], file.Files);
        Assert.NotEmpty(Traces(path));
        Assert.False(File.Exists(JaegerJsonFile.IndexPath(path)));
        Assert.False(File.Exists(JaegerJsonFile.PartPath(path, 1)));
    }

    [Fact]
    public void Every_process_names_the_run_and_its_cpu()
    {
        var (path, _, _) = Record("tags.json", new TraceFileOptions { Split = 0, Run = Run }, ops: 50);
        foreach (var t in Traces(path))
            foreach (var p in t.GetProperty("processes").EnumerateObject())
            {
                var tags = Tags(p.Value);
                Assert.Equal("small", tags["machine"].GetString());
                Assert.Equal("merged", tags["policy"].GetString());
                Assert.Equal("sim", tags["engine"].GetString());
                Assert.Equal(1, tags["seed"].GetInt64());
                Assert.Equal("cpu-" + tags["cpu"].GetInt64(), p.Value.GetProperty("serviceName").GetString());
            }
    }

    [Fact]
    public void Time_scale_1000_shows_one_emulated_ns_as_one_us_and_keeps_the_true_times()
    {
        var (path, _, _) = Record("scaled.json", new TraceFileOptions { Split = 0, TimeScale = 1000, Run = Run }, ops: 50);
        long epochUs = Epoch.ToUnixTimeMilliseconds() * 1000;
        var spans = Traces(path).SelectMany(t => t.GetProperty("spans").EnumerateArray()).ToList();
        Assert.Contains(spans, s => Tags(s)["emu.duration_ns"].GetInt64() is > 0 and < 1000); // sub-µs spans exist …
        foreach (var s in spans)
        {
            var tags = Tags(s);
            Assert.Equal(tags["emu.start_ns"].GetInt64(), s.GetProperty("startTime").GetInt64() - epochUs); // … and show as µs
            Assert.Equal(tags["emu.duration_ns"].GetInt64(), s.GetProperty("duration").GetInt64());
        }
    }

    [Fact]
    public void A_window_trace_has_a_lane_per_cpu_holding_the_traces_that_began_in_the_window()
    {
        const long window = 50_000;
        var (path, _, _) = Record("windows.json", new TraceFileOptions { Split = 0, WindowNs = window, Run = Run });
        var traces = Traces(path);
        Assert.True(traces.Count > 2);
        foreach (var t in traces)
        {
            var spans = t.GetProperty("spans").EnumerateArray().ToList();
            var processes = t.GetProperty("processes");
            string Service(JsonElement s) => processes.GetProperty(s.GetProperty("processID").GetString()!).GetProperty("serviceName").GetString()!;
            string? Parent(JsonElement s) => s.GetProperty("references").EnumerateArray()
                .Where(r => r.GetProperty("refType").GetString() == "CHILD_OF").Select(r => r.GetProperty("spanID").GetString()).SingleOrDefault();
            var root = Assert.Single(spans, s => Parent(s) is null);
            long k = Tags(root)["emu.window"].GetInt64();
            var lanes = spans.Where(s => Parent(s) == root.GetProperty("spanID").GetString()).ToDictionary(s => s.GetProperty("spanID").GetString()!);
            Assert.Equal(lanes.Count, lanes.Values.Select(Service).Distinct().Count()); // one lane per CPU
            var ids = spans.Select(s => s.GetProperty("spanID").GetString()).ToHashSet();
            foreach (var s in spans)
            {
                Assert.Equal(t.GetProperty("traceID").GetString(), s.GetProperty("traceID").GetString());
                Assert.Contains(Parent(s) ?? root.GetProperty("spanID").GetString(), ids);
                if (Parent(s) is { } p && lanes.TryGetValue(p, out var lane))
                {
                    // A fault or writer call: on its CPU's lane, begun in this window.
                    Assert.Equal(Service(lane), Service(s));
                    Assert.Equal(k, Tags(s)["emu.start_ns"].GetInt64() / window);
                }
            }
        }
    }
}
