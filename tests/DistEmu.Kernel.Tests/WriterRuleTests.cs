using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>PROTOCOL.md §6: munmap, mprotect and mmap.</summary>
public class WriterRuleTests
{
    private const long P = TestMachines.Page;
    private const VmFlags RW = VmFlags.Read | VmFlags.Write;
    private static long A => TestMachines.AreaA;

    [Fact]
    public void Munmap_zaps_frees_frames_and_page_tables_and_ends_the_write_epoch()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        PtePage? page = null;
        long seqBefore = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 512 * P, RW);
            for (int i = 0; i < 64; i++) await CpuAccess.Access(t, A + i * P, write: true);
            page = mm.PageTable.Lookup(A);
            seqBefore = mm.MmLockSeq;
            await Munmap.DoMunmap(t, mm, A, A + 512 * P);
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.True(page!.Freed);
        Assert.Null(mm.PageTable.Lookup(A));
        Assert.Equal(0, h.Machine.Frames.Anon);
        Assert.Equal(0, mm.Tree.Count);
        Assert.Equal(seqBefore + 1, mm.MmLockSeq);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Munmap_of_the_middle_splits_the_vma_and_keeps_shared_page_tables()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 16 * P, RW);
            for (int i = 0; i < 16; i++) await CpuAccess.Access(t, A + i * P, write: true);
            await Munmap.DoMunmap(t, mm, A + 4 * P, A + 8 * P);
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.Equal(2, mm.Tree.Count);
        Assert.Equal((A, A + 4 * P), (mm.Tree.Vmas[0].Start, mm.Tree.Vmas[0].End));
        Assert.Equal((A + 8 * P, A + 16 * P), (mm.Tree.Vmas[1].Start, mm.Tree.Vmas[1].End));
        Assert.NotNull(mm.PageTable.Lookup(A));
        Assert.Equal(PteKind.None, Pte.Kind(mm.PageTable.Read(A + 5 * P)));
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A + 9 * P)));
        Assert.Equal(12, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Mprotect_read_only_shoots_down_other_cpus_and_a_later_write_is_sigsegv()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var a = h.NewTask(0, mm); var b = h.NewTask(2, mm);
        FaultOutcome late = FaultOutcome.Handled;
        h.Spawn(a, 0, async t => { await Mmap.DoMmap(t, mm, A, 8 * P, RW); await CpuAccess.Access(t, A, write: true); });
        h.Spawn(b, 10_000, async t => await CpuAccess.Access(t, A, write: true)); // b caches a writable translation
        h.Spawn(a, 20_000, async t => await Mprotect.DoMprotect(t, mm, A, A + 8 * P, VmFlags.Read));
        h.Spawn(b, 40_000, async t => late = await CpuAccess.Access(t, A, write: true));
        h.Run();
        Assert.Equal(FaultOutcome.Sigsegv, late);
        Assert.True(h.Machine.VmStat.nr_tlb_remote_flush >= 1);
        Assert.False(Pte.IsWritable(mm.PageTable.Read(A)));
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void MprotectFixup_returns_at_once_for_a_vma_whose_flags_stay_the_same()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        Vma? vma = null;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            vma = await Mmap.DoMmap(t, mm, A, 16 * P, RW);
            await CpuAccess.Access(t, A + 5 * P, write: true);
            long seq = vma.VmLockSeq;
            // The middle of the mapping, with the protection it already has: no split, no vma_start_write.
            await Mprotect.DoMprotect(t, mm, A + 4 * P, A + 8 * P, RW);
            Assert.Equal(seq, vma.VmLockSeq);
        });
        h.Run();
        Assert.Equal(1, mm.Tree.Count);
        Assert.Equal((A, A + 16 * P), (mm.Tree.Vmas[0].Start, mm.Tree.Vmas[0].End));
        Assert.True(Pte.IsWritable(mm.PageTable.Read(A + 5 * P)));
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void ChangePteRange_makes_exclusive_anonymous_entries_writable_when_mprotect_adds_write()
    {
        // MM_CP_TRY_CHANGE_WRITABLE: after mprotect(PROT_READ) then mprotect(PROT_READ|PROT_WRITE), a page this mm wrote
        // is writable again at once (no write-protect fault); the zero page a read mapped is still copied on write.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        long faultsBeforeWrites = 0, faultsAfterWrites = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            await CpuAccess.Access(t, A, write: true); // an anonymous page of its own
            await CpuAccess.Access(t, A + P, write: false); // the zero page, read-only
            await Mprotect.DoMprotect(t, mm, A, A + 8 * P, VmFlags.Read);
            await Mprotect.DoMprotect(t, mm, A, A + 8 * P, RW);
            Assert.True(Pte.IsWritable(mm.PageTable.Read(A)));
            Assert.False(Pte.IsWritable(mm.PageTable.Read(A + P)));
            faultsBeforeWrites = t.Machine.VmStat.Faults;
            await CpuAccess.Access(t, A, write: true);
            await CpuAccess.Access(t, A + P, write: true);
            faultsAfterWrites = t.Machine.VmStat.Faults;
        });
        h.Run();
        Assert.Equal(1, faultsAfterWrites - faultsBeforeWrites); // only the zero page's copy-on-write
        Assert.True(Pte.IsWritable(mm.PageTable.Read(A + P)));
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Mmap_over_an_existing_mapping_replaces_the_overlap()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var first = await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            for (int i = 0; i < 8; i++) await CpuAccess.Access(t, A + i * P, write: true);
            var second = await Mmap.DoMmap(t, mm, A + 2 * P, 2 * P, VmFlags.Read);
            Assert.True(first.Detached || first.End <= A + 2 * P);
            Assert.False(second.IsWriteLocked); // the write epoch ended at mmap_write_unlock
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.Equal(3, mm.Tree.Count);
        Assert.Equal(VmFlags.Read, mm.Tree.Find(A + 2 * P)!.Flags);
        Assert.Equal(PteKind.None, Pte.Kind(mm.PageTable.Read(A + 2 * P)));
        Assert.Equal(6, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void A_writer_waits_for_mmap_lock_readers_and_its_wait_is_recorded()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.MmapOnly));
        var mm = h.Machine.CreateMm();
        var r = h.NewTask(0, mm); var w = h.NewTask(1, mm);
        long waited = 0;
        h.Spawn(r, 0, async t => { await Locking.MmapLock.MmapReadLock(t, mm); await t.Delay(30_000); Locking.MmapLock.MmapReadUnlock(t, mm); });
        h.Spawn(w, 1_000, async t => waited = await Munmap.DoMunmap(t, mm, A, A + P));
        h.Run();
        Assert.InRange(waited, 25_000, 35_000);
        Assert.Equal(1, h.Machine.WriterWait.Count);
        Assert.Equal(waited, h.Machine.WriterWait.Max);
    }
}
