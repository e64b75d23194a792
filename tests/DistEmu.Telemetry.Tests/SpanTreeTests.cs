using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Telemetry.Tests;

/// <summary>The spans of the LKML case: who is whose child, which links exist, and that durations are the emulated waits.</summary>
public class SpanTreeTests
{
    private static EmuSpan Single(IEnumerable<EmuSpan> spans, string name) => Assert.Single(spans, s => s.Name == name);
    private static object Tag(EmuSpan s, string key) => s.Tags.First(t => t.Key == key).Value;

    [Fact]
    public void Merged_the_fault_holds_its_vma_lock_through_the_migration_wait_and_the_munmap_of_that_vma_follows_from_it()
    {
        var sink = new ListSink();
        var r = Scenarios.Lkml(FaultPolicy.Merged, sameVma: true, sink);
        var faultTrace = Assert.Single(sink.Traces, t => t.Any(s => s.Name == "migration_entry_wait"));
        var fault = Assert.Single(faultTrace, s => s.Name == "page_fault" && s.ParentId == 0);
        var wait = Single(faultTrace, "migration_entry_wait");
        var vmaLock = Assert.Single(faultTrace, s => s.Name == "vma_lock read");
        Assert.Equal(fault.SpanId, wait.ParentId);
        Assert.Equal(fault.SpanId, vmaLock.ParentId);
        Assert.True(vmaLock.StartNs <= wait.StartNs && vmaLock.EndNs >= wait.EndNs, "the VMA read lock is held across the migration wait");
        Assert.Equal(r.Machine.MigrationWait.Max, wait.DurationNs);
        Assert.Equal(wait.DurationNs, (long)Tag(wait, "emu.wait_ns"));

        var migration = Single(sink.All, "migrate_page");
        var link = Assert.Single(wait.Links);
        Assert.Equal((migration.Trace, migration.SpanId), (link.Trace, link.SpanId));
        Assert.Equal(["lock", "unmap", "copy", "remap", "unlock"],
            sink.All.Where(s => s.Trace == migration.Trace && s.ParentId == migration.SpanId).OrderBy(s => s.StartNs).Select(s => s.Name).ToArray());

        var munmap = Assert.Single(sink.All, s => s.Name == "munmap");
        var writeLock = Assert.Single(sink.All, s => s.Name == "vma_lock write" && s.ParentId == munmap.SpanId && (long)Tag(s, "emu.wait_ns") > 0);
        Assert.Contains(writeLock.Links, l => l.SpanId == fault.SpanId);
        Assert.Equal(r.Machine.WriterWait.Max, (long)Tag(munmap, "emu.wait_ns"));
        Assert.Equal((long)Tag(writeLock, "emu.wait_ns"), (long)Tag(munmap, "emu.wait_ns"));
        // Every root names the policy it ran under.
        var roots = sink.All.Where(s => s.ParentId == 0).ToList();
        Assert.NotEmpty(roots);
        Assert.All(roots, s => Assert.Equal("merged", Tag(s, "emu.policy")));
    }

    [Fact]
    public void MmapOnly_the_fault_holds_mmap_lock_through_the_wait_and_the_munmap_of_another_vma_follows_from_it()
    {
        var sink = new ListSink();
        var r = Scenarios.Lkml(FaultPolicy.MmapOnly, sameVma: false, sink);
        var faultTrace = Assert.Single(sink.Traces, t => t.Any(s => s.Name == "migration_entry_wait"));
        var fault = Assert.Single(faultTrace, s => s.Name == "page_fault");
        var wait = Single(faultTrace, "migration_entry_wait");
        var mmapRead = Assert.Single(faultTrace, s => s.Name == "mmap_lock read");
        Assert.DoesNotContain(faultTrace, s => s.Name == "vma_lock read");
        Assert.Equal(fault.SpanId, mmapRead.ParentId);
        Assert.True(mmapRead.StartNs <= wait.StartNs && mmapRead.EndNs >= wait.EndNs, "mmap_lock is held across the migration wait");

        var munmap = Assert.Single(sink.All, s => s.Name == "munmap");
        var writeLock = Assert.Single(sink.All, s => s.Name == "mmap_lock write" && s.ParentId == munmap.SpanId);
        Assert.Contains(writeLock.Links, l => l.SpanId == fault.SpanId);
        Assert.Equal(r.Machine.WriterWait.Max, (long)Tag(writeLock, "emu.wait_ns"));
        Assert.True((long)Tag(writeLock, "emu.wait_ns") > 100_000);
    }

    [Fact]
    public void Sampling_keeps_the_expected_share_and_always_keeps_retried_faults()
    {
        var all = new ListSink();
        Scenarios.Lkml(FaultPolicy.VmaBailout, sameVma: false, all);
        var some = new ListSink();
        Scenarios.Lkml(FaultPolicy.VmaBailout, sameVma: false, some, ratio: 0.0);
        Assert.True(some.Traces.Count < all.Traces.Count);
        // The one fault that retried (VMA path → RETRY → mmap_lock) is kept even at ratio 0.
        Assert.Contains(some.All, s => s.Name == "page_fault" && s.Tags.Any(t => t.Key == "emu.retry" && (bool)t.Value));
    }
}

/// <summary>Contended-only and head sampling: what is built, what is counted.</summary>
public class SamplingTests
{
    [Fact]
    public void ContendedOnly_builds_only_children_over_the_threshold_and_keeps_only_traces_that_reached_it_or_retried()
    {
        const long threshold = 10_000;
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { ContendedNs = threshold, Policy = "vma-bailout" });
        SimRun.Run(LkmlCase.Options(FaultPolicy.VmaBailout, sameVma: false, observer: recorder));
        Assert.NotEmpty(sink.Traces);
        foreach (var trace in sink.Traces)
        {
            var root = Assert.Single(trace, s => s.ParentId == 0);
            bool retried = root.Tags.Any(t => t.Key == "emu.retry" && (bool)t.Value);
            var children = trace.Where(s => s.ParentId != 0 && s.Name != "migrate_page").ToList();
            Assert.All(children, c => Assert.True(c.DurationNs >= threshold || trace.Any(p => p.SpanId == c.ParentId && p.Name == "migrate_page"),
                $"{c.Name} lasted {c.DurationNs} ns, under the {threshold} ns threshold"));
            long longest = trace.Select(s => s.DurationNs).DefaultIfEmpty(0).Max();
            Assert.True(retried || longest >= threshold, $"trace of {root.Name} kept with its longest span {longest} ns and no retry");
        }
        Console.WriteLine($"contended-only: {recorder.Spans} spans in {sink.Traces.Count} traces, {recorder.SampledOut} sampled out");
        Assert.True(recorder.SampledOut > 0, "short traces are left out");
    }

    [Fact]
    public void A_trace_left_out_by_head_sampling_but_kept_for_its_retry_has_its_root_only()
    {
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { SampleRatio = 0, Policy = "vma-bailout" });
        SimRun.Run(LkmlCase.Options(FaultPolicy.VmaBailout, sameVma: false, observer: recorder));
        var trace = Assert.Single(sink.Traces);
        var root = Assert.Single(trace);
        Console.WriteLine($"kept: {root.Name} [{string.Join(", ", root.Tags)}]");
        Assert.Equal("page_fault", root.Name);
        Assert.Contains(root.Tags, t => t.Key == "emu.children_sampled_out" && (bool)t.Value);
        Assert.Contains(root.Tags, t => t.Key == "emu.address");
        Assert.Equal(1, recorder.Spans);
        Assert.True(recorder.SampledOut > 0);
    }
}

/// <summary>--trace-clock host: span times from the host clock, emulated times in the attributes.</summary>
public class HostClockTests
{
    [Fact]
    public void On_the_host_clock_children_lie_within_their_root_and_the_emulated_times_stay_in_the_attributes()
    {
        long tick = 0;
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = "merged", HostClock = () => ++tick * 1_000 });
        var r = SimRun.Run(LkmlCase.Options(FaultPolicy.Merged, sameVma: true, observer: recorder));
        foreach (var trace in sink.Traces)
        {
            var root = Assert.Single(trace, s => s.ParentId == 0);
            foreach (var s in trace)
                Assert.True(s.StartNs >= root.StartNs && s.EndNs <= root.EndNs && s.StartNs <= s.EndNs,
                    $"{s.Name} [{s.StartNs}, {s.EndNs}] outside its root {root.Name} [{root.StartNs}, {root.EndNs}] on the host clock");
        }
        var wait = Assert.Single(sink.All, s => s.Name == "migration_entry_wait");
        Console.WriteLine($"migration_entry_wait: host [{wait.StartNs}, {wait.EndNs}], emulated {wait.EmulatedDurationNs} ns from {wait.Tags.First(t => t.Key == "emu.start_ns").Value}");
        Assert.Equal(r.Machine.MigrationWait.Max, wait.EmulatedDurationNs);
        Assert.True(wait.DurationNs < wait.EmulatedDurationNs, "the host clock here ticks 1 µs per event, far less than the 150 µs emulated wait");
    }
}
