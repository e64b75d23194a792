using System.Text.Json;
using System.Text.RegularExpressions;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Telemetry.Tests;

/// <summary>The Jaeger JSON file: what Jaeger UI's upload needs (DESIGN.md, Telemetry), checked on every span; and a golden file.</summary>
public sealed partial class JaegerFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("distemu-trace-").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    [GeneratedRegex("^[0-9a-f]{32}$")] private static partial Regex TraceIdHex();
    [GeneratedRegex("^[0-9a-f]{16}$")] private static partial Regex SpanIdHex();

    private string Record(string workload, FaultPolicy policy)
    {
        var path = Path.Combine(_dir, "trace.json");
        var sink = new JaegerJsonFile(path, DateTimeOffset.FromUnixTimeSeconds(1_800_000_000), new TraceFileOptions { Split = 0 }); // one file: every span is read
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = policy.Name() });
        SimRun.Run(new SimRunOptions { Machine = Scenarios.Small(policy), Workload = workload, OpsPerTask = 300, Observer = recorder });
        sink.Complete();
        Assert.False(File.Exists(path + ".tmp-" + Environment.ProcessId), "the temporary file is renamed");
        return path;
    }

    [Theory]
    [InlineData("migrate-munmap", FaultPolicy.Merged)]
    [InlineData("mixed", FaultPolicy.VmaBailout)]
    public void Every_trace_and_span_is_well_formed_and_every_reference_resolves(string workload, FaultPolicy policy)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Record(workload, policy)));
        var traces = doc.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.NotEmpty(traces);
        var allSpans = traces.SelectMany(t => t.GetProperty("spans").EnumerateArray()).ToList();
        var ids = allSpans.Select(s => (s.GetProperty("traceID").GetString(), s.GetProperty("spanID").GetString())).ToHashSet();
        foreach (var t in traces)
        {
            string traceId = t.GetProperty("traceID").GetString()!;
            Assert.Matches(TraceIdHex(), traceId);
            var processes = t.GetProperty("processes");
            var spans = t.GetProperty("spans").EnumerateArray().ToList();
            var local = spans.Select(s => s.GetProperty("spanID").GetString()).ToHashSet();
            foreach (var s in spans)
            {
                Assert.Equal(traceId, s.GetProperty("traceID").GetString());
                Assert.Matches(SpanIdHex(), s.GetProperty("spanID").GetString()!);
                Assert.True(processes.TryGetProperty(s.GetProperty("processID").GetString()!, out var p), "processID exists");
                Assert.StartsWith("cpu-", p.GetProperty("serviceName").GetString());
                long start = s.GetProperty("startTime").GetInt64(), duration = s.GetProperty("duration").GetInt64();
                Assert.InRange(start, 1_800_000_000_000_000L, 1_800_000_100_000_000L); // µs since the epoch: within 100 s of it
                Assert.True(duration >= 0);
                if (s.GetProperty("operationName").GetString() == "page_fault")
                    Assert.Contains(s.GetProperty("tags").EnumerateArray(), t => t.GetProperty("key").GetString() == "emu.fault.result");
                foreach (var r in s.GetProperty("references").EnumerateArray())
                {
                    string type = r.GetProperty("refType").GetString()!;
                    Assert.Contains(type, new[] { "CHILD_OF", "FOLLOWS_FROM" });
                    if (type == "CHILD_OF")
                        Assert.Contains(r.GetProperty("spanID").GetString(), local);
                    else
                        Assert.Contains((r.GetProperty("traceID").GetString(), r.GetProperty("spanID").GetString()), ids);
                }
            }
        }
    }

    [Fact]
    public void The_lkml_trace_file_matches_the_golden_file()
    {
        var path = Path.Combine(_dir, "lkml.json");
        var sink = new JaegerJsonFile(path, DateTimeOffset.FromUnixTimeSeconds(1_800_000_000));
        Scenarios.Lkml(FaultPolicy.Merged, sameVma: true, new ForwardSink(sink));
        sink.Complete();
        // The golden file in the source tree, the one DISTEMU_UPDATE_GOLDEN=1 rewrites (not the copy in bin).
        string golden = Path.Combine(SourceDir(), "golden", "lkml-merged.jaeger.json");
        string actual = File.ReadAllText(path);
        if (Environment.GetEnvironmentVariable("DISTEMU_UPDATE_GOLDEN") == "1")
            File.WriteAllText(golden, actual);
        Assert.True(File.Exists(golden), "golden file missing; run with DISTEMU_UPDATE_GOLDEN=1 to write it");
        Assert.Equal(File.ReadAllText(golden), actual);
    }

    private sealed class ForwardSink(ITraceSink inner) : ITraceSink
    {
        public void Write(IReadOnlyList<EmuSpan> trace) => inner.Write(trace);
        public void Complete() { }
    }

    private static string SourceDir([System.Runtime.CompilerServices.CallerFilePath] string file = "") => Path.GetDirectoryName(file)!;

    [Fact]
    public void An_unwritable_path_fails_when_the_file_is_opened()
    {
        Assert.ThrowsAny<IOException>(() => new JaegerJsonFile(Path.Combine(_dir, "no", "such", "dir", "t.json"), DateTimeOffset.UnixEpoch));
    }
}
