using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;
using DistEmu.Telemetry;

namespace DistEmu.Client.Tests;

/// <summary>--trace-clock and --trace-orleans: the combinations refused, and Orleans' spans joining the faults' traces.</summary>
[Collection(OtlpCollection.Name)]
public sealed class TraceClockTests : InProcessCliTests
{
    [Theory]
    [InlineData("--trace-clock", "wall", "--trace-file", "t.json")]
    [InlineData("--trace-orleans", "--otlp", "http://127.0.0.1:1")]
    [InlineData("--trace-orleans", "--trace-clock", "host", "--engine", "sim", "--otlp", "http://127.0.0.1:1")]
    [InlineData("--trace-orleans", "--trace-clock", "host", "--trace-file", "t.json")]
    [InlineData("--trace-orleans", "--trace-clock", "host", "--cluster", "redis://127.0.0.1:1", "--otlp", "http://127.0.0.1:1")]
    [InlineData("--trace-clock", "host")]
    public void A_trace_clock_combination_that_cannot_work_is_exit_2_with_one_line_and_nothing_written(params string[] options)
    {
        var outDir = Path.Combine(_tmp, "refused");
        var args = new List<string> { "run", "--out", outDir };
        for (int i = 0; i < options.Length; i++)
            args.Add(options[i] == "t.json" ? Path.Combine(_tmp, "t.json") : options[i]);
        var (code, stdout, stderr) = Cli([.. args]);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Console.WriteLine(line);
        Assert.Equal(2, code);
        Assert.Contains(options[0], line);
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(outDir));
        Assert.Empty(Directory.EnumerateFiles(_tmp, "t.json*"));
    }

    [Fact]
    public async Task With_trace_orleans_Orleans_spans_are_exported_within_the_traces_of_the_emulators_spans()
    {
        var exported = new List<Activity>();
        var epoch = DateTimeOffset.UtcNow;
        using var sink = new OtlpTraceSink(new OtlpSinkOptions
        {
            Epoch = epoch,
            Exporter = new OpenTelemetry.Exporter.InMemoryExporter<Activity>(exported),
            ScheduledDelay = TimeSpan.FromMilliseconds(50),
            LiveSources = ["Microsoft.Orleans.*", TracingConfig.LiveSourceName],
        });
        var collector = new OrleansTraceCollector(sink, new TracingConfig { HostClock = true, LiveRoots = true, EpochUnixNs = epoch.ToUnixTimeMilliseconds() * 1_000_000 });
        using (var host = await SiloHosting.StartEmbeddedAsync(activityPropagation: true))
        {
            var r = await OrleansRun.Run(host.Grains(), LkmlCase.Options(FaultPolicy.MmapOnly, sameVma: false), stallTimeout: TimeSpan.FromSeconds(30), tracing: collector);
            Assert.Equal("completed", r.Status);
            await host.StopAsync();
        }
        sink.Complete();
        var orleans = exported.Where(a => a.Source.Name.StartsWith("Microsoft.Orleans", StringComparison.Ordinal)).ToList();
        var emulator = exported.Where(a => a.Source.Name is OtlpTraceSink.SourceName or TracingConfig.LiveSourceName).ToList();
        var emulatorTraces = emulator.Select(a => a.TraceId).ToHashSet();
        Console.WriteLine($"{exported.Count} exported: {emulator.Count} emulator spans, {orleans.Count} Orleans spans " +
            $"({string.Join(", ", orleans.Select(a => a.DisplayName).Distinct().Take(5))})");
        Assert.NotEmpty(orleans);
        // Orleans' spans are kept only inside the emulator's traces: each shares a trace with an emulator span.
        Assert.All(orleans, a => Assert.Contains(a.TraceId, emulatorTraces));
        // The live roots are the emulator's roots: none is exported twice.
        Assert.Equal(emulator.Count, emulator.Select(a => a.SpanId).Distinct().Count());
        Assert.Contains(emulator, a => a.Source.Name == TracingConfig.LiveSourceName && a.DisplayName is "page_fault" or "munmap" or "mmap");
    }
}
