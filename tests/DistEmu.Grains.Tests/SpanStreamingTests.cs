using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;
using DistEmu.Telemetry;
using Microsoft.Extensions.Hosting;

namespace DistEmu.Grains.Tests;

/// <summary>
/// Spans stream out of the grains during the run: each grain holds one batch and has one in flight, the client spills
/// what comes by trace id and joins whole traces at the end, and nothing recorded is left out unless a budget says so.
/// </summary>
public sealed class SpanStreamingTests
{
    private sealed class ListSink : ITraceSink
    {
        public List<List<EmuSpan>> Traces { get; } = new();
        public void Write(IReadOnlyList<EmuSpan> trace) => Traces.Add(trace.Select(s => s.Clone()).ToList());
        public void Complete() { }
    }

    /// <summary>A collector that takes each batch only when the test says so, and notes how many were in flight at once.</summary>
    private sealed class GatedCollector : ISpanCollector
    {
        public List<TaskCompletionSource> Pending { get; } = new();
        public List<SpanBatch> Taken { get; } = new();
        public int MaxInFlight { get; private set; }

        public Task Write(SpanBatch batch)
        {
            var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Pending.Add(gate);
            MaxInFlight = Math.Max(MaxInFlight, Pending.Count(p => !p.Task.IsCompleted));
            return gate.Task.ContinueWith(_ => Taken.Add(batch), TaskScheduler.Default);
        }

        public void ReleaseAll()
        {
            foreach (var p in Pending) p.TrySetResult();
        }
    }

    /// <summary>Runs <paramref name="test"/> one continuation at a time, as a grain's turns run (a reentrant grain's too).</summary>
    private static Task AsGrainTurns(Func<Task> test) =>
        Task.Factory.StartNew(test, CancellationToken.None, TaskCreationOptions.None, new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler).Unwrap();

    private static EmuSpan Span(ulong trace, ulong id, ulong parent, string name, long start) => new()
    {
        Trace = new TraceId(0, trace),
        SpanId = id,
        ParentId = parent,
        Name = name,
        StartNs = start,
        EndNs = start + 10,
        Process = "cpu-0",
    };

    [Fact]
    public Task A_grain_holds_at_most_one_batch_past_a_flush_point_and_a_full_batch_waits_for_the_one_in_flight() => AsGrainTurns(async () =>
    {
        const int batch = 8;
        var collector = new GatedCollector();
        var spans = new GrainSpans(collector, batch);
        int maxHeldAtFlush = 0;
        Task? waiting = null;
        // 50 "grain calls" of 3 spans each, each ending at a flush point, while the collector takes nothing.
        for (int call = 0; call < 50 && waiting is null; call++)
        {
            spans.Write([Span((ulong)call + 1, 1, 0, "page_fault", call)]);
            spans.Write([Span((ulong)call + 1, 2, 1, "vma_lock read", call), Span((ulong)call + 1, 3, 1, "mmap_lock read", call)]);
            var flushed = spans.Flush();
            maxHeldAtFlush = Math.Max(maxHeldAtFlush, spans.Held);
            if (!flushed.IsCompleted) waiting = flushed;
        }
        Console.WriteLine($"held at most {maxHeldAtFlush} spans after a flush point (batch {batch}); {collector.Pending.Count} batch(es) sent, {spans.Held} held");
        // The first full batch went without waiting; the second full one waits for it: the writer holds the grain back.
        Assert.NotNull(waiting);
        Assert.Single(collector.Pending);
        Assert.True(spans.Held >= batch && spans.Held < batch + 3, $"{spans.Held} spans held: one batch, plus at most what one call records");
        Assert.True(maxHeldAtFlush < batch + 3);

        collector.ReleaseAll();
        await waiting;
        Assert.Equal(2, collector.Pending.Count);
        Assert.True(spans.Held < batch);
        collector.ReleaseAll();
        var drained = spans.Drain();
        collector.ReleaseAll(); // the drain's own batch
        await drained;
        collector.ReleaseAll();
        Assert.Equal(0, spans.Held);
        Assert.Equal(1, collector.MaxInFlight);
        Assert.Equal(spans.Sent, collector.Taken.Sum(b => b.Spans.Length));
        Assert.Equal(0, spans.Dropped);
    });

    [Fact]
    public Task Concurrent_flush_points_of_a_reentrant_grain_still_send_one_batch_at_a_time() => AsGrainTurns(async () =>
    {
        var collector = new GatedCollector();
        var spans = new GrainSpans(collector, 4);
        spans.Write(Enumerable.Range(1, 4).Select(i => Span(1, (ulong)i, 0, "x", i)).ToList());
        var first = spans.Flush(); // sends, does not wait for it
        Assert.True(first.IsCompleted);
        spans.Write(Enumerable.Range(5, 4).Select(i => Span(2, (ulong)i, 0, "x", i)).ToList());
        // Two turns reach a flush point while the first batch is in flight: both wait, and only one sends after it.
        var a = spans.Flush();
        var b = spans.Flush();
        Assert.False(a.IsCompleted || b.IsCompleted);
        collector.ReleaseAll();
        await Task.WhenAll(a, b);
        Assert.Equal(2, collector.Pending.Count);
        Assert.Equal(1, collector.MaxInFlight);
        collector.ReleaseAll();
        await spans.Drain();
        Assert.Equal(8, spans.Sent);
    });

    [Fact]
    public async Task A_hand_over_that_fails_is_counted_as_dropped_never_thrown_into_the_grain()
    {
        var spans = new GrainSpans(new FailingCollector(), 2);
        spans.Write([Span(1, 1, 0, "page_fault", 0), Span(1, 2, 1, "vma_lock read", 0), Span(1, 3, 1, "vma_lock read", 0)]);
        await spans.Drain();
        Assert.Equal(3, spans.Dropped);
        Assert.Equal(0, spans.Sent);
    }

    private sealed class FailingCollector : ISpanCollector
    {
        public Task Write(SpanBatch batch) => Task.FromException(new TimeoutException("the client went away"));
    }

    /// <summary>Traces as fragments from several grains, in any order: trace t has a root and t % 5 children.</summary>
    private static List<SpanBatch> Fragments(int traces, int seed)
    {
        var rng = new Random(seed);
        var all = new List<SpanMessage>();
        for (int t = 1; t <= traces; t++)
        {
            all.Add(SpanCodec.ToMessage(Span((ulong)t, (ulong)t * 100, 0, "page_fault", t)));
            for (int c = 1; c <= t % 5; c++)
                all.Add(SpanCodec.ToMessage(Span((ulong)t, (ulong)t * 100 + (ulong)c, (ulong)t * 100, "vma_lock read", t + c)));
        }
        var shuffled = all.OrderBy(_ => rng.Next()).ToList();
        return shuffled.Chunk(7).Select(c => new SpanBatch { Spans = c }).ToList();
    }

    [Fact]
    public async Task With_a_budget_whole_traces_are_kept_or_left_out_and_the_left_out_count_is_the_rest()
    {
        var batches = Fragments(traces: 300, seed: 3);
        long total = batches.Sum(b => b.Spans.Length);
        var sink = new ListSink();
        using var collector = new OrleansTraceCollector(sink, new TracingConfig(), maxSpans: 500, buckets: 8);
        foreach (var b in batches) await collector.Write(b);
        collector.Complete(new StatsMessage { SpanCounts = [total, 0, 0] });
        Console.WriteLine($"{total} spans: {collector.Spans} written in {collector.Traces} traces, {collector.LeftOutSpans} in {collector.LeftOutTraces} left out; " +
            $"at most {collector.PeakBucketSpans} held while joining");

        Assert.True(collector.Spans <= 500 && collector.Spans > 400, $"{collector.Spans} written");
        Assert.Equal(total - collector.Spans, collector.LeftOutSpans);
        Assert.Equal(300 - collector.Traces, collector.LeftOutTraces);
        Assert.Equal(collector.Spans, sink.Traces.Sum(t => t.Count));
        Assert.Equal(0, collector.Dropped);
        foreach (var trace in sink.Traces)
        {
            // Whole: the root (written last) and every child it had.
            ulong t = trace[0].Trace.Lo;
            Assert.Equal(1 + (int)(t % 5), trace.Count);
            Assert.Equal(("page_fault", 0UL), (trace[^1].Name, trace[^1].ParentId));
            Assert.All(trace, s => Assert.Equal(t, s.Trace.Lo));
        }
        Assert.True(collector.PeakBucketSpans < total / 2, "the join holds one bucket, not the run");
        Assert.False(Directory.Exists(collector.SpillFolder));
    }

    [Fact]
    public async Task Without_a_budget_every_span_received_is_written_and_a_shortfall_is_counted_as_dropped()
    {
        var batches = Fragments(traces: 50, seed: 5);
        long total = batches.Sum(b => b.Spans.Length);
        var sink = new ListSink();
        using var collector = new OrleansTraceCollector(sink, new TracingConfig(), buckets: 4);
        foreach (var b in batches.Skip(1)) await collector.Write(b);
        // The grains say they recorded all of them and dropped none: the missing batch is counted, not silently lost.
        collector.Complete(new StatsMessage { SpanCounts = [total, 0, 0] });
        Assert.Equal(total - batches[0].Spans.Length, collector.Spans);
        Assert.Equal(batches[0].Spans.Length, collector.Dropped);
        Assert.Equal(0, collector.LeftOutSpans);
    }

    /// <summary>What a run's traces look like, in terms that do not depend on ids or times.</summary>
    private sealed record Shape(Dictionary<string, int> Roots, int Childless, int Orphans, Dictionary<string, int> Names, int Links, int DanglingLinks, int Spans);

    private static Shape ShapeOf(List<List<EmuSpan>> traces)
    {
        var all = traces.SelectMany(t => t).ToList();
        var ids = all.Select(s => s.SpanId).ToHashSet();
        var roots = traces.SelectMany(t => t.Where(s => s.ParentId == 0)).GroupBy(s => s.Name).ToDictionary(g => g.Key, g => g.Count());
        int childless = traces.Count(t => t.Count == 1 && t[0].Name == "page_fault");
        int orphans = traces.Count(t => t.Count(s => s.ParentId == 0) != 1);
        var names = all.GroupBy(s => s.Name).ToDictionary(g => g.Key, g => g.Count());
        int links = all.Sum(s => s.Links.Count(l => l.Type == SpanRefType.FollowsFrom));
        int dangling = all.Sum(s => s.Links.Count(l => !ids.Contains(l.SpanId)));
        return new Shape(roots, childless, orphans, names, links, dangling, all.Count);
    }

    private static string Show(Shape s) =>
        $"{s.Spans} spans; roots {string.Join(", ", s.Roots.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}"))}; " +
        $"names {string.Join(", ", s.Names.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key}={k.Value}"))}; " +
        $"{s.Childless} childless faults, {s.Orphans} traces without one root, {s.Links} follows-from links ({s.DanglingLinks} dangling)";

    [Fact]
    public async Task A_fully_traced_migrate_munmap_run_on_the_embedded_silo_writes_what_the_sim_engine_writes()
    {
        var o = EngineRuns.Options("migrate-munmap", FaultPolicy.Merged, ops: 400);
        var simSink = new ListSink();
        var recorder = new SpanRecorder(simSink, new TracingOptions { Policy = "merged", Seed = o.Seed });
        var sim = SimRun.Run(o with { Observer = recorder });

        var orleansSink = new ListSink();
        // Small batches, so that the grains hand spans over many times during the run, not only at its end.
        using var collector = new OrleansTraceCollector(orleansSink, new TracingConfig { BatchSpans = 16 }, buckets: 4);
        RunResult orleans;
        using (var host = await SiloHosting.StartEmbeddedAsync())
        {
            orleans = await OrleansRun.Run(host.Grains(), o, stallTimeout: TimeSpan.FromSeconds(60), tracing: collector);
            await host.StopAsync();
        }
        Assert.Equal("completed", orleans.Status);
        var simShape = ShapeOf(simSink.Traces);
        var orleansShape = ShapeOf(orleansSink.Traces);
        Console.WriteLine($"sim ({sim.Machine.VmStat.Faults} faults):     {Show(simShape)}");
        Console.WriteLine($"orleans ({orleans.Machine.VmStat.Faults} faults): {Show(orleansShape)}");
        Console.WriteLine($"collector: {collector.Received} received, {collector.Spans} written in {collector.Traces} traces, {collector.Dropped} dropped");

        // Nothing recorded is lost: every span a grain recorded reached the writer and was written.
        Assert.Equal(0, collector.Dropped);
        Assert.Equal(collector.Received, collector.Spans);
        Assert.Equal(collector.Spans, orleansShape.Spans);
        Assert.True(collector.Received > 16 * 8, "spans were handed over in many batches");
        // The same system calls run on both engines (each task's op stream is fixed by the seed), so the writers' traces
        // are the same in number and kind.
        foreach (var writer in new[] { "mmap", "munmap" })
            Assert.Equal(simShape.Roots.GetValueOrDefault(writer), orleansShape.Roots.GetValueOrDefault(writer));
        // Lax timing under orleans changes which accesses fault and which VMA attempts abort, so the counts of faults and
        // of their children may differ; what must hold: one root per fault counted by the run's own counters, one root
        // per trace, and no fault without a child — every fault made a VMA or mm call, whose spans are its children.
        Assert.Equal(orleans.Machine.VmStat.Faults, orleansShape.Roots.GetValueOrDefault("page_fault"));
        Assert.Equal(sim.Machine.VmStat.Faults, simShape.Roots.GetValueOrDefault("page_fault"));
        Assert.Equal(0, simShape.Childless);
        Assert.Equal(0, orleansShape.Childless);
        Assert.Equal(0, orleansShape.Orphans);
        // Every kind of span the sim engine writes, the orleans engine writes too — but for those recorded only when a
        // wait happened (a contended PTL, a folio lock, a migration entry), since lax CPUs wait elsewhere: a VMA grain
        // runs a PTL section within one turn. And follows-from links point at spans that were written.
        foreach (var name in simShape.Names.Keys.Where(n => !n.StartsWith("ptl ", StringComparison.Ordinal) && n is not "folio_lock" and not "migration_entry_wait"))
            Assert.True(orleansShape.Names.ContainsKey(name), $"no '{name}' span under orleans");
        Assert.Equal(0, orleansShape.DanglingLinks);
        Assert.Equal(simShape.DanglingLinks, orleansShape.DanglingLinks);
    }
}
