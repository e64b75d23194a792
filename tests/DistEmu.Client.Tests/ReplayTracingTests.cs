using System.Text.Json;
using Xunit.Abstractions;

namespace DistEmu.Client.Tests;

/// <summary>Tracing a trace replay: spans of the replayed faults on the sim engine; a clear refusal where spans are not recorded.</summary>
public sealed class ReplayTracingTests(ITestOutputHelper output) : InProcessCliTests
{
    [Fact]
    public void A_traced_replay_writes_the_replayed_faults_as_spans_and_counts_them_in_stats()
    {
        var outDir = Path.Combine(_tmp, "traced");
        var traceFile = Path.Combine(_tmp, "replay.json");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--as-fast-as-possible", "--trace-file", traceFile, "--trace-sample", "0.01", "--out", outDir);
        Assert.True(code == 0, $"traced replay exited {code}: {stderr}");
        using var jaeger = JsonDocument.Parse(File.ReadAllText(traceFile));
        var traces = jaeger.RootElement.GetProperty("data").EnumerateArray().ToList();
        int faults = traces.Count(t => t.GetProperty("spans").EnumerateArray().Any(s => s.GetProperty("operationName").GetString() == "page_fault"));
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var trace = stats.RootElement.GetProperty("trace");
        output.WriteLine($"{traces.Count} traces, {faults} with a page_fault; stats.json trace: {trace}");
        // 1 % of the sample's ~38,700 faults, each its own trace (retried ones always kept).
        Assert.InRange(faults, 200, 1_000);
        Assert.Equal(trace.GetProperty("spans").GetInt64(), traces.Sum(t => t.GetProperty("spans").GetArrayLength()));
    }

    [Fact]
    public void A_traced_replay_on_the_orleans_engine_is_refused_with_exit_2_and_nothing_written()
    {
        var outDir = Path.Combine(_tmp, "refused");
        var traceFile = Path.Combine(_tmp, "refused.json");
        var (code, _, stderr) = Cli("replay", SampleTrace.Path(), "--engine", "orleans", "--trace-file", traceFile, "--out", outDir);
        output.WriteLine(stderr);
        Assert.Equal(2, code);
        Assert.Contains("--trace-file", stderr);
        Assert.Empty(Directory.EnumerateFileSystemEntries(_tmp)); // no results folder, no trace file, no temporary
        Assert.False(File.Exists(traceFile));
    }
}
