using System.Text.Json;
using Xunit.Abstractions;

namespace DistEmu.Client.Tests;

/// <summary>Tracing a trace replay: spans of the replayed faults on the sim engine; a clear refusal where spans are not recorded.</summary>
public sealed class ReplayTracingTests(ITestOutputHelper output) : InProcessCliTests
{
    [Theory]
    [InlineData("sim")]
    [InlineData("orleans")]
    public void A_traced_replay_writes_the_replayed_faults_as_spans_and_counts_them_in_stats(string engine)
    {
        var outDir = Path.Combine(_tmp, "traced");
        var traceFile = Path.Combine(_tmp, "replay.json");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--engine", engine, "--as-fast-as-possible", "--trace-file", traceFile, "--trace-sample", "0.01", "--out", outDir);
        Assert.True(code == 0, $"traced replay exited {code}: {stderr}");
        using var jaeger = JsonDocument.Parse(File.ReadAllText(traceFile));
        var traces = jaeger.RootElement.GetProperty("data").EnumerateArray().ToList();
        var names = traces.SelectMany(t => t.GetProperty("spans").EnumerateArray()).Select(s => s.GetProperty("operationName").GetString()).ToList();
        int faults = traces.Count(t => t.GetProperty("spans").EnumerateArray().Any(s => s.GetProperty("operationName").GetString() == "page_fault"));
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var trace = stats.RootElement.GetProperty("trace");
        output.WriteLine($"{engine}: {traces.Count} traces, {faults} with a page_fault, spans by name: {string.Join(", ", names.GroupBy(n => n).Select(g => $"{g.Key} {g.Count()}"))}; stats.json trace: {trace}");
        // 1 % of the sample's ~38,700 faults, each its own trace (retried ones always kept).
        Assert.InRange(faults, 200, 1_000);
        Assert.Contains("vma_lock read", names); // the hold, recorded where the VMA is (its grain under orleans)
        Assert.Equal(trace.GetProperty("spans").GetInt64(), names.Count);
    }

    [Fact]
    public void A_sim_replay_refuses_trace_orleans_with_exit_2_and_nothing_written()
    {
        // Orleans' own spans exist only where grains run: a replay on the sim engine has none to join.
        var outDir = Path.Combine(_tmp, "refused");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--trace-orleans", "--trace-clock", "host", "--otlp", "http://127.0.0.1:9", "--out", outDir);
        output.WriteLine(stderr);
        Assert.Equal(2, code);
        Assert.Contains("--trace-orleans", stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_tmp)); // no results folder, no trace file, no temporary
    }
}
