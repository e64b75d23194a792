using System.Diagnostics;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using OpenTelemetry.Exporter;

namespace DistEmu.Telemetry.Tests;

/// <summary>
/// A fault that meets a sanitizer report is marked failed in its trace — Jaeger's error tag, the report as
/// emu.violation, OTLP's Error status — so the race is the red trace in Jaeger, even under 1 % sampling.
/// </summary>
[Collection(OtlpCollection.Name)]
public class ViolationSpanTests
{
    /// <summary>vma-unlocked's S8 (the page table freed under a migration waiter): a schedule found by exploration.</summary>
    private static RunResult RunS8(ITraceSink sink, double ratio)
    {
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = "vma-unlocked", SampleRatio = ratio, Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000) });
        var machine = new MachineSpec { Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 256L << 20, Distance = MachineSpec.UniformDistance(2), Policy = FaultPolicy.VmaUnlocked, Thp = TransparentHugepage.Never };
        var template = new SimRunOptions { Machine = machine, Workload = "migrate-munmap", OpsPerTask = 150 };
        var found = ScheduleExplorer.Explore(template, firstSeed: 1, schedules: 100, jobs: 2, stopAtFirst: true);
        Assert.True(found.StoppedAtSeed is not null, "exploration found no schedule with S8 to trace");
        return SimRun.Run(template with { Seed = found.StoppedAtSeed!.Value, Exploration = Exploration.Default, Observer = recorder });
    }

    [Fact]
    public void The_faulting_cpus_root_span_carries_the_report_and_only_it_is_marked()
    {
        var sink = new ListSink();
        var r = RunS8(sink, ratio: 0.01);
        var v = r.Machine.Sanitizer.Violations.First(x => x.Invariant == "S8");

        var marked = sink.All.Where(s => s.ErrorDescription != null).ToList();
        var span = Assert.Single(marked);
        Assert.Equal("page_fault", span.Name);
        Assert.Equal(0L, (long)span.ParentId);
        var tags = span.Tags.ToDictionary(t => t.Key, t => t.Value);
        Assert.Equal(true, tags["error"]);
        Assert.Equal((long)v.Cpu, tags["emu.cpu"]);
        Assert.Equal($"S8: {v.Message}", tags["emu.violation"]);
        Assert.Equal($"S8: {v.Message}", span.ErrorDescription);
        // Sampled at 1 %, yet kept for its violation; the other kept faults are not marked.
        Assert.True(sink.Traces.Count < r.Machine.VmStat.Faults / 10, $"{sink.Traces.Count} traces of {r.Machine.VmStat.Faults} faults");
        // A root kept against head sampling is kept for its own retry or violation, not for one another CPU met meanwhile.
        foreach (var root in sink.All.Where(s => s.Tags.Any(t => t.Key == "emu.children_sampled_out")))
        {
            var rt = root.Tags.ToDictionary(t => t.Key, t => t.Value);
            Assert.True(rt.ContainsKey("emu.violation") || rt.GetValueOrDefault("emu.retry") is true,
                $"{root.Name} of cpu{rt["emu.cpu"]} at {rt["emu.start_ns"]} ns kept with neither a retry nor a violation of its own");
        }
    }

    [Fact]
    public void The_marked_span_is_exported_with_the_OTLP_error_status()
    {
        var exported = new List<Activity>();
        using (var sink = new OtlpTraceSink(new OtlpSinkOptions { Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000), Exporter = new InMemoryExporter<Activity>(exported), ScheduledDelay = TimeSpan.FromMilliseconds(50) }))
        {
            RunS8(sink, ratio: 0.01);
            sink.Complete();
        }
        var failed = exported.Where(a => a.Status == ActivityStatusCode.Error).ToList();
        var a = Assert.Single(failed);
        Assert.StartsWith("S8: ", a.StatusDescription);
        Assert.All(exported.Except(failed), x => Assert.Equal(ActivityStatusCode.Unset, x.Status));
    }

    [Fact]
    public void The_OTLP_json_lines_file_gives_the_marked_span_status_code_2()
    {
        var path = Path.Combine(Directory.CreateTempSubdirectory("distemu-violation-").FullName, "t.jsonl");
        try
        {
            using (var file = new OtlpJsonLinesFile(path, DateTimeOffset.FromUnixTimeSeconds(1_800_000_000)))
            {
                RunS8(file, ratio: 0.01);
                file.Complete();
            }
            var lines = File.ReadAllLines(path);
            var withStatus = lines.Where(l => l.Contains("\"status\"", StringComparison.Ordinal)).ToList();
            var line = Assert.Single(withStatus);
            Assert.Contains("\"code\":2", line);
            Assert.Contains("\"message\":\"S8: ", line);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, true);
        }
    }
}
