using System.Globalization;
using System.Text.Json;

namespace DistEmu.Client.Tests;

/// <summary>The tracing options of distemu run: files, live OTLP to an unreachable endpoint, bad paths.</summary>
[Collection(OtlpCollection.Name)]
public sealed class TracingOptionTests : InProcessCliTests
{
    [Fact]
    public void An_unreachable_otlp_endpoint_never_fails_the_run_and_its_drops_are_reported()
    {
        var outDir = Path.Combine(_tmp, "otlp");
        var trace = Path.Combine(_tmp, "t.json");
        var (code, _, stderr) = Cli("run", "--engine", "sim", "--workload", "migrate-munmap", "--ops", "200", "--otlp", "http://127.0.0.1:1", "--trace-file", trace, "--out", outDir);
        Assert.True(code == 0, stderr);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var t = stats.RootElement.GetProperty("trace");
        long spans = t.GetProperty("spans").GetInt64();
        Assert.True(spans > 0);
        Assert.Equal(spans, t.GetProperty("dropped").GetInt64());
        // The file got every span all the same.
        using var jaeger = JsonDocument.Parse(File.ReadAllText(trace));
        Assert.Equal(spans, jaeger.RootElement.GetProperty("data").EnumerateArray().Sum(x => x.GetProperty("spans").GetArrayLength()));
    }

    [Fact]
    public void An_unwritable_trace_path_fails_before_the_run_with_exit_2()
    {
        var outDir = Path.Combine(_tmp, "nope");
        var (code, _, stderr) = Cli("run", "--engine", "sim", "--trace-file", Path.Combine(_tmp, "no", "such", "dir", "t.json"), "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("--trace-file", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void One_run_writes_a_split_jaeger_trace_and_a_perfetto_file_of_the_same_spans_and_names_them_in_two_lines()
    {
        var outDir = Path.Combine(_tmp, "two-files");
        string jaegerPath = Path.Combine(_tmp, "both.json"), perfettoPath = Path.Combine(_tmp, "both.perfetto.json");
        var (code, stdout, stderr) = Cli("run", "--engine", "sim", "--workload", "migrate-munmap", "--ops", "200", "--trace-file", jaegerPath, "--trace-file", perfettoPath, "--trace-split", "100", "--out", outDir);
        Assert.True(code == 0, stderr);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        long spans = stats.RootElement.GetProperty("trace").GetProperty("spans").GetInt64();
        var parts = Directory.GetFiles(_tmp, "both-*.json").Order().ToList();
        Assert.True(parts.Count > 1, $"{parts.Count} parts");
        long inParts = 0;
        foreach (var part in parts)
        {
            using var jaeger = JsonDocument.Parse(File.ReadAllText(part));
            inParts += jaeger.RootElement.GetProperty("data").EnumerateArray().Sum(x => x.GetProperty("spans").GetArrayLength());
        }
        Assert.Equal(spans, inParts);
        using var perfetto = JsonDocument.Parse(File.ReadAllText(perfettoPath));
        Assert.Equal(spans, perfetto.RootElement.GetProperty("traceEvents").EnumerateArray().Count(e => e.GetProperty("ph").GetString() == "X"));
        // The terminal: the parts in one line with their index, the other file in its own.
        var lines = stdout.Split('\n');
        Assert.Contains(lines, l => l.StartsWith($"trace files: {parts.Count} Jaeger files", StringComparison.Ordinal) && l.Contains("both.index.json", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Trim() == $"trace file: {perfettoPath}");
    }

    [Fact]
    public void A_trace_file_given_twice_is_refused_before_the_run()
    {
        var outDir = Path.Combine(_tmp, "twice");
        var trace = Path.Combine(_tmp, "twice.json");
        var (code, _, stderr) = Cli("run", "--engine", "sim", "--trace-file", trace, "--trace-file", trace, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("given twice", Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.False(Directory.Exists(outDir));
        Assert.False(File.Exists(trace));
    }

    [Fact]
    public void Contended_only_tracing_keeps_fewer_traces_than_full_tracing()
    {
        long Spans(params string[] extra)
        {
            var outDir = Path.Combine(_tmp, Guid.NewGuid().ToString("N"));
            var (code, _, stderr) = Cli(["run", "--engine", "sim", "--workload", "mmap-churn", "--ops", "300", "--trace-file", Path.Combine(_tmp, Guid.NewGuid() + ".jsonl"), "--out", outDir, .. extra]);
            Assert.True(code == 0, stderr);
            using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
            return stats.RootElement.GetProperty("trace").GetProperty("spans").GetInt64();
        }
        long all = Spans(), contended = Spans("--trace-contended", "1000");
        Assert.True(contended < all, $"{contended} spans contended-only vs {all} in all");
        Assert.True(contended > 0, "mmap-churn has writers waiting for mmap_lock");
    }

    [Fact]
    public void The_orleans_engine_writes_the_grains_spans_to_the_trace_file_with_a_process_per_cpu()
    {
        var outDir = Path.Combine(_tmp, "orleans-trace");
        var trace = Path.Combine(_tmp, "orleans.json");
        var (code, _, stderr) = Cli("run", "--engine", "orleans", "--workload", "migrate-munmap", "--ops", "200", "--trace-file", trace, "--out", outDir);
        Assert.True(code == 0, stderr);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        long spans = stats.RootElement.GetProperty("trace").GetProperty("spans").GetInt64();
        using var jaeger = JsonDocument.Parse(File.ReadAllText(trace));
        var traces = jaeger.RootElement.GetProperty("data").EnumerateArray().ToList();
        var services = traces.SelectMany(t => t.GetProperty("processes").EnumerateObject().Select(p => p.Value.GetProperty("serviceName").GetString())).ToHashSet();
        var names = traces.SelectMany(t => t.GetProperty("spans").EnumerateArray().Select(s => s.GetProperty("operationName").GetString())).ToHashSet();
        Console.WriteLine($"{spans} spans in {traces.Count} traces; services {string.Join(", ", services.Order())}; names {string.Join(", ", names.Order())}");
        Assert.True(spans > 0);
        Assert.Equal(spans, traces.Sum(t => t.GetProperty("spans").GetArrayLength()));
        Assert.All(services, s => Assert.StartsWith("cpu-", s));
        Assert.True(services.Count > 1, "one process per emulated CPU");
        Assert.Contains("page_fault", names);
        Assert.Contains("vma_lock read", names); // recorded in the VMA grains, joined to the faults' traces
    }

    [Theory]
    [InlineData("orleans")]
    [InlineData("sim")]
    public void A_machine_too_small_for_the_workload_is_exit_2_before_anything_is_launched(string engine)
    {
        var outDir = Path.Combine(_tmp, "small-machine");
        var (code, stdout, stderr) = Cli("run", "--engine", engine, "--preset", "small", "--workload", "page-fault1", "--param", "size_mb=4096", "--out", outDir);
        Assert.Equal(2, code);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("distemu: error: memory", line);
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(outDir));
    }

    [Theory]
    [InlineData("orleans")]
    [InlineData("sim")]
    public void A_span_budget_leaves_out_whole_traces_and_says_so_on_the_terminal_and_in_stats_json(string engine)
    {
        var outDir = Path.Combine(_tmp, "budget-" + engine);
        var trace = Path.Combine(_tmp, $"budget-{engine}.json");
        var (code, stdout, stderr) = Cli("run", "--engine", engine, "--workload", "migrate-munmap", "--ops", "200", "--trace-file", trace,
            "--trace-max-spans", "500", "--out", outDir);
        Assert.True(code == 0, stderr);
        using var stats = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var t = stats.RootElement.GetProperty("trace");
        long spans = t.GetProperty("spans").GetInt64(), leftOut = t.GetProperty("left_out_spans").GetInt64();
        var line = Assert.Single(Lines(stdout), l => l.StartsWith("trace: ", StringComparison.Ordinal));
        Console.WriteLine(line);
        Assert.Equal(500, t.GetProperty("max_spans").GetInt64());
        Assert.InRange(spans, 1, 500);
        Assert.True(leftOut > 0 && t.GetProperty("left_out_traces").GetInt64() > 0, "the run records more than 500 spans");
        Assert.Equal(0, t.GetProperty("dropped").GetInt64());
        Assert.Contains($"{spans.ToString("N0", CultureInfo.InvariantCulture)} spans written", line);
        Assert.Contains($"{leftOut.ToString("N0", CultureInfo.InvariantCulture)} spans in", line);
        // The file holds whole traces: each has its one root, and every parent it names is in it.
        using var jaeger = JsonDocument.Parse(File.ReadAllText(trace));
        var traces = jaeger.RootElement.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(spans, traces.Sum(x => x.GetProperty("spans").GetArrayLength()));
        Assert.Equal(t.GetProperty("traces").GetInt64(), traces.Count);
        foreach (var x in traces)
        {
            var list = x.GetProperty("spans").EnumerateArray().ToList();
            var ids = list.Select(s => s.GetProperty("spanID").GetString()).ToHashSet();
            var parents = list.SelectMany(s => s.GetProperty("references").EnumerateArray()
                .Where(r => r.GetProperty("refType").GetString() == "CHILD_OF").Select(r => r.GetProperty("spanID").GetString())).ToList();
            Assert.Equal(list.Count - 1, parents.Count);
            Assert.All(parents, p => Assert.Contains(p, ids));
        }
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-5")]
    [InlineData("many")]
    public void A_bad_span_budget_is_exit_2_before_the_run(string value)
    {
        var outDir = Path.Combine(_tmp, "bad-budget");
        var (code, stdout, stderr) = Cli("run", "--engine", "sim", "--trace-file", Path.Combine(_tmp, "b.json"), "--trace-max-spans", value, "--out", outDir);
        Assert.Equal(2, code);
        Assert.Contains("--trace-max-spans", Assert.Single(Lines(stderr)));
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(outDir));
    }
}
