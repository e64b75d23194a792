using DistEmu.Kernel.Machine;

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
        Assert.Equal(["lock", "unmap", "copy", "remap", "unlock"], migration.Trace == migration.Trace
            ? sink.All.Where(s => s.ParentId == migration.SpanId).OrderBy(s => s.StartNs).Select(s => s.Name).ToArray() : []);

        var munmap = Assert.Single(sink.All, s => s.Name == "munmap");
        var writeLock = Assert.Single(sink.All, s => s.Name == "vma_lock write" && s.ParentId == munmap.SpanId && (long)Tag(s, "emu.wait_ns") > 0);
        Assert.Contains(writeLock.Links, l => l.SpanId == fault.SpanId);
        Assert.Equal(r.Machine.WriterWait.Max, (long)Tag(munmap, "emu.wait_ns"));
        Assert.Equal((long)Tag(writeLock, "emu.wait_ns"), (long)Tag(munmap, "emu.wait_ns"));
        Assert.All(sink.All, s => Assert.Equal("merged", s.ParentId == 0 ? Tag(s, "emu.policy") : "merged"));
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
