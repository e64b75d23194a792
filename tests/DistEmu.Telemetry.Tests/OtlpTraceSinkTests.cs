using System.Diagnostics;
using DistEmu.Kernel.Machine;
using OpenTelemetry.Exporter;

namespace DistEmu.Telemetry.Tests;

/// <summary>The LKML case exported as Activities: same spans, ids, parents, times, attributes and links as the recorder made.</summary>
[Collection(OtlpCollection.Name)]
public class OtlpTraceSinkTests
{
    private static readonly DateTimeOffset Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000); // Scenarios.Lkml's

    private static (ListSink Recorded, List<Activity> Exported, OtlpTraceSink Sink) RunInMemory(FaultPolicy policy, bool sameVma)
    {
        var exported = new List<Activity>();
        var recorded = new ListSink();
        using var sink = new OtlpTraceSink(new OtlpSinkOptions { Epoch = Epoch, Exporter = new InMemoryExporter<Activity>(exported), ScheduledDelay = TimeSpan.FromMilliseconds(50) });
        Scenarios.Lkml(policy, sameVma, new TeeSink(recorded, sink));
        sink.Complete();
        return (recorded, exported, sink);
    }

    [Theory]
    [InlineData(FaultPolicy.Merged, true)]
    [InlineData(FaultPolicy.MmapOnly, false)]
    public void Every_recorded_span_is_exported_with_its_ids_parent_times_attributes_and_links(FaultPolicy policy, bool sameVma)
    {
        var (recorded, exported, sink) = RunInMemory(policy, sameVma);
        var spans = recorded.All.ToList();
        Assert.NotEmpty(spans);
        Assert.Equal(spans.Count, exported.Count);
        Assert.Equal(spans.Count, sink.Received);
        Assert.Equal(spans.Count, sink.Exported);
        Assert.Equal(0, sink.Dropped);
        Assert.True(OtlpTraceSink.PreservesSpanIds, "this runtime's Activity keeps its span id in a private field the sink sets");

        var byId = exported.ToDictionary(a => a.SpanId.ToHexString());
        foreach (var s in spans)
        {
            Assert.True(byId.TryGetValue(s.SpanId.ToString("x16"), out var a), $"span {s.Name} {s.SpanId:x16} exported");
            Assert.Equal(s.Name, a!.DisplayName);
            Assert.Equal(OtlpTraceSink.SourceName, a.Source.Name);
            Assert.Equal(s.Trace.ToString(), a.TraceId.ToHexString());
            Assert.Equal(s.ParentId == 0 ? "0000000000000000" : s.ParentId.ToString("x16"), a.ParentSpanId.ToHexString());
            Assert.Equal($"00-{s.Trace}-{s.SpanId:x16}-01", a.Id);
            // Activity keeps 100 ns ticks: start and duration within 1 µs of the emulated ns.
            Assert.InRange((a.StartTimeUtc - Epoch.UtcDateTime).Ticks * 100 - s.StartNs, -1000, 1000);
            Assert.InRange(a.Duration.Ticks * 100 - s.DurationNs, -1000, 1000);
            foreach (var (k, v) in s.Tags)
                Assert.True(Equals(v, a.GetTagItem(k)), $"{s.Name} {k}: {v} vs {a.GetTagItem(k) ?? "null"} [{string.Join(", ", s.Tags)}]");
            Assert.Equal(s.Process, a.GetTagItem("emu.process"));
            Assert.Equal(s.DurationNs, a.GetTagItem("emu.duration_ns"));
            Assert.Equal(s.Links.Select(l => (l.Trace.ToString(), l.SpanId.ToString("x16"))),
                a.Links.Select(l => (l.Context.TraceId.ToHexString(), l.Context.SpanId.ToHexString())));
        }
        Assert.Equal(spans.Select(s => s.Name).Order(), exported.Select(a => a.DisplayName).Order());
    }

    [Fact]
    public void The_migration_wait_is_a_child_of_the_fault_and_links_to_the_migration()
    {
        var (_, exported, _) = RunInMemory(FaultPolicy.Merged, sameVma: true);
        var wait = Assert.Single(exported, a => a.DisplayName == "migration_entry_wait");
        var fault = Assert.Single(exported, a => a.SpanId == wait.ParentSpanId);
        Assert.Equal("page_fault", fault.DisplayName);
        Assert.Equal(wait.TraceId, fault.TraceId);
        Assert.Equal(default, fault.ParentSpanId);
        Assert.Equal("merged", fault.GetTagItem("emu.policy"));
        var link = Assert.Single(wait.Links);
        var migration = Assert.Single(exported, a => a.DisplayName == "migrate_page");
        Assert.Equal((migration.TraceId, migration.SpanId), (link.Context.TraceId, link.Context.SpanId));
        Assert.Equal(["lock", "unmap", "copy", "remap", "unlock"],
            exported.Where(a => a.ParentSpanId == migration.SpanId).OrderBy(a => a.StartTimeUtc).Select(a => a.DisplayName));
        var munmap = Assert.Single(exported, a => a.DisplayName == "munmap");
        var writeLock = Assert.Single(exported, a => a.DisplayName == "vma_lock write" && a.ParentSpanId == munmap.SpanId && (long)a.GetTagItem("emu.wait_ns")! > 0);
        Assert.Contains(writeLock.Links, l => l.Context.SpanId == fault.SpanId);
    }

    [Theory]
    [InlineData(OtlpExportProtocol.Grpc)]
    [InlineData(OtlpExportProtocol.HttpProtobuf)]
    public void An_unreachable_collector_neither_stalls_nor_fails_the_run_and_the_loss_is_counted(OtlpExportProtocol protocol)
    {
        // What must hold whatever the host's load: the run completes while every export fails (recording never waits
        // for the collector), Complete() returns (its wait is bounded by CompleteTimeout, not by the collector), and
        // every span is counted as received and dropped, none as exported.
        var recorded = new ListSink();
        using (var sink = new OtlpTraceSink(new OtlpSinkOptions
        {
            Endpoint = new Uri("http://127.0.0.1:1"),
            Protocol = protocol,
            Epoch = Epoch,
            CompleteTimeout = TimeSpan.FromSeconds(3),
            ExportTimeout = TimeSpan.FromSeconds(2),
            ScheduledDelay = TimeSpan.FromMilliseconds(50),
        }))
        {
            var r = Scenarios.Lkml(FaultPolicy.Merged, sameVma: true, new TeeSink(recorded, sink));
            Assert.Equal("completed", r.Status);
            sink.Complete();
            long spans = recorded.All.Count();
            Assert.Equal(spans, sink.Received);
            Assert.Equal(0, sink.Exported);
            Assert.Equal(spans, sink.Dropped);
            Assert.True(sink.Dropped > 0);
        }
    }
}
