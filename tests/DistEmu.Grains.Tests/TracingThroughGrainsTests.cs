using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;
using DistEmu.Telemetry;

namespace DistEmu.Grains.Tests;

/// <summary>
/// Spans under the orleans engine: the LKML case through grains on two silos (1 µs skew bound, so host order follows
/// emulated time) gives the sim engine's span tree — the same spans by name, the same parent of each, the same links —
/// although a fault's root is recorded in its CPU grain and its lock holds and migration wait in the VMA grain.
/// </summary>
[Collection("two silos")]
public sealed class TracingThroughGrainsTests(TwoSilos cluster)
{
    private sealed class ListSink : ITraceSink
    {
        public List<List<EmuSpan>> Traces { get; } = new();
        public void Write(IReadOnlyList<EmuSpan> trace) => Traces.Add(trace.Select(s => s.Clone()).ToList());
        public void Complete() { }
    }

    /// <summary>The tree's shape: each span as "name ← parent name" (root: "← ∅"), and each link as "name → target name", sorted.</summary>
    private static (List<string> Edges, List<string> Links) Shape(List<List<EmuSpan>> traces)
    {
        var all = traces.SelectMany(t => t).ToList();
        var byId = all.GroupBy(s => s.SpanId).ToDictionary(g => g.Key, g => g.First());
        string NameOf(ulong id) => id == 0 ? "∅" : byId.TryGetValue(id, out var s) ? s.Name : "missing";
        var edges = all.Select(s => $"{s.Name} ← {NameOf(s.ParentId)}").Order(StringComparer.Ordinal).ToList();
        var links = all.SelectMany(s => s.Links.Select(l => $"{s.Name} → {NameOf(l.SpanId)}")).Order(StringComparer.Ordinal).ToList();
        return (edges, links);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Merged_lkml_case_has_the_same_span_tree_under_orleans_as_under_sim(bool sameVma)
    {
        var o = LkmlCase.Options(FaultPolicy.Merged, sameVma);
        var simSink = new ListSink();
        var recorder = new SpanRecorder(simSink, new TracingOptions { Policy = "merged" });
        SimRun.Run(o with { Observer = recorder });

        var orleansSink = new ListSink();
        var collector = new OrleansTraceCollector(orleansSink, new TracingConfig());
        var r = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000, tracing: collector);
        Assert.Equal("completed", r.Status);

        var (simEdges, simLinks) = Shape(simSink.Traces);
        var (orleansEdges, orleansLinks) = Shape(orleansSink.Traces);
        Console.WriteLine($"sim: {simEdges.Count} spans, orleans: {orleansEdges.Count} spans ({collector.Spans} written, {collector.Dropped} dropped)");
        Console.WriteLine("only under sim: " + string.Join("; ", simEdges.Except(orleansEdges)));
        Console.WriteLine("only under orleans: " + string.Join("; ", orleansEdges.Except(simEdges)));
        Assert.Equal(simEdges, orleansEdges);
        Assert.Equal(simLinks, orleansLinks);
        Assert.Contains("migration_entry_wait → migrate_page", orleansLinks);
        if (sameVma) Assert.Contains("vma_lock write → page_fault", orleansLinks);

        // The fault that waited: one trace, its root on the faulter's CPU, its children recorded in the VMA grain.
        var faultTrace = Assert.Single(orleansSink.Traces, t => t.Any(s => s.Name == "migration_entry_wait"));
        var root = Assert.Single(faultTrace, s => s.ParentId == 0);
        Assert.Equal(("page_fault", $"cpu-{LkmlCase.FaulterCpu}"), (root.Name, root.Process));
        Assert.All(faultTrace, s => Assert.Equal(root.Trace, s.Trace));
        Assert.Equal(collector.Spans, orleansEdges.Count);
    }

    [Fact]
    public async Task Head_sampling_is_decided_where_the_fault_begins_and_a_left_out_faults_grains_record_nothing()
    {
        var o = LkmlCase.Options(FaultPolicy.VmaBailout, sameVma: false);
        var simSink = new ListSink();
        SimRun.Run(o with { Observer = new SpanRecorder(simSink, new TracingOptions { SampleRatio = 0, Policy = "vma-bailout" }) });
        var orleansSink = new ListSink();
        var collector = new OrleansTraceCollector(orleansSink, new TracingConfig { SampleRatio = 0 });
        var run = await OrleansRun.Run(cluster.Grains, o, stallTimeout: TimeSpan.FromSeconds(30), quantumNs: 1_000, tracing: collector);
        Assert.True(run.Status == "completed", $"{run.Status}: {run.Reason}");
        Console.WriteLine($"sim: {Shape(simSink.Traces).Edges.Count} spans, orleans: {collector.Spans} written, {collector.SampledOut} sampled out");
        var (simEdges, simLinks) = Shape(simSink.Traces);
        var (orleansEdges, orleansLinks) = Shape(orleansSink.Traces);
        Assert.Equal(simEdges, orleansEdges);
        Assert.Equal(simLinks, orleansLinks);
        // Only the retried fault, root only, although its VMA attempt and retry ran in other grains.
        var root = Assert.Single(Assert.Single(orleansSink.Traces));
        Assert.Equal("page_fault", root.Name);
        Assert.Contains(root.Tags, t => t.Key == "emu.children_sampled_out");
        Assert.True(collector.SampledOut > 0);
    }
}
