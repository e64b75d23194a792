using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The writers' building blocks on their own: __split_vma (VmaSplit.SplitVma, VmaRange.SplitAndWriteLock) and
/// zap_pte_range (ZapPteRange.ZapVma). Addresses are in pages of TestMachines.AreaA.
/// </summary>
public class VmaSplitZapTests
{
    private const long P = TestMachines.Page, A = TestMachines.AreaA;
    private const VmFlags Rw = VmFlags.Read | VmFlags.Write;

    private static (SimHarness H, MmStruct Mm) Machine()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        return (h, h.Machine.CreateMm());
    }

    private static void Run(SimHarness h)
    {
        h.Run();
        h.CloseFrameAccounting();
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void SplitVma_above_keeps_the_lower_part_and_the_new_upper_VMA_starts_at_the_matching_file_offset_both_write_locked()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var file = t.Machine.CreateFile("data", diskBacked: false);
            var vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw, file, pgoff: 100);
            await MmapLock.MmapWriteLock(t, mm);
            var (upper, waited) = await VmaSplit.SplitVma(t, vma, A + 4 * P, newBelow: false);
            mm.Tree = mm.Tree.With([], [upper]);
            Assert.Equal((A, A + 4 * P, 100L), (vma.Start, vma.End, vma.PgOff));
            Assert.Equal((A + 4 * P, A + 16 * P, 104L), (upper.Start, upper.End, upper.PgOff));
            Assert.Equal((Rw, file), (upper.Flags, upper.File));
            Assert.True(vma.IsWriteLocked && upper.IsWriteLocked, $"after the split: {vma} write-locked {vma.IsWriteLocked}, {upper} {upper.IsWriteLocked}");
            Assert.Equal(0, waited); // no fault held the VMA
            MmapLock.MmapWriteUnlock(t, mm);
            Assert.False(vma.IsWriteLocked || upper.IsWriteLocked, "the write locks outlived mmap_write_unlock's epoch");
            Assert.Same(upper, mm.Tree.Find(A + 5 * P));
            Assert.Same(vma, mm.Tree.Find(A + 3 * P));
        });
        Run(h);
    }

    [Fact]
    public void SplitVma_below_gives_the_new_VMA_the_lower_part_and_moves_the_originals_start_and_file_offset_up()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var file = t.Machine.CreateFile("data", diskBacked: false);
            var vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw, file, pgoff: 100);
            await MmapLock.MmapWriteLock(t, mm);
            var (lower, _) = await VmaSplit.SplitVma(t, vma, A + 4 * P, newBelow: true);
            mm.Tree = mm.Tree.With([], [lower]);
            Assert.Equal((A, A + 4 * P, 100L), (lower.Start, lower.End, lower.PgOff));
            Assert.Equal((A + 4 * P, A + 16 * P, 104L), (vma.Start, vma.End, vma.PgOff));
            MmapLock.MmapWriteUnlock(t, mm);
        });
        Run(h);
    }

    [Fact]
    public void SplitVma_waits_for_the_fault_holding_the_VMA_read_lock()
    {
        var (h, mm) = Machine();
        Vma? vma = null;
        long readerReleasedAt = -1, splitAt = -1, waited = -1;
        h.Spawn(h.NewTask(0, mm), 0, async t => vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw));
        h.Spawn(h.NewTask(1, mm), 10_000, async t =>
        {
            Assert.True(VmaLock.VmaStartRead(t, vma!, A));
            await t.Delay(20_000);
            readerReleasedAt = t.Clock;
            VmaLock.VmaEndRead(t, vma!);
        });
        h.Spawn(h.NewTask(2, mm), 15_000, async t =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            var (upper, w) = await VmaSplit.SplitVma(t, vma!, A + 8 * P, newBelow: false);
            waited = w;
            splitAt = t.Clock;
            mm.Tree = mm.Tree.With([], [upper]);
            MmapLock.MmapWriteUnlock(t, mm);
        });
        Run(h);
        Assert.True(waited > 0 && splitAt > readerReleasedAt,
            $"__split_vma went ahead at {splitAt} ns (waited {waited} ns) while a fault held the VMA read lock until {readerReleasedAt} ns");
    }

    [Fact]
    public void SplitAndWriteLock_leaves_a_VMA_the_caller_does_not_change_unsplit_and_not_write_locked()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var a = await Mmap.DoMmap(t, mm, A, 16 * P, Rw);
            var b = await Mmap.DoMmap(t, mm, A + 16 * P, 16 * P, VmFlags.Read);
            await MmapLock.MmapWriteLock(t, mm);
            var (inside, _) = await VmaRange.SplitAndWriteLock(t, mm, A + 8 * P, A + 24 * P, changes: v => v == a);
            var changed = Assert.Single(inside);
            Assert.Equal((A + 8 * P, A + 16 * P), (changed.Start, changed.End));
            Assert.True(changed.IsWriteLocked);
            Assert.Equal((A, A + 8 * P), (a.Start, a.End));
            Assert.Equal((A + 16 * P, A + 32 * P), (b.Start, b.End));
            Assert.False(b.IsWriteLocked, "mprotect_fixup returns early for a VMA whose flags stay: it is not write-locked");
            Assert.Equal(3, mm.Tree.Overlapping(A, A + 32 * P).Count);
            MmapLock.MmapWriteUnlock(t, mm);
        });
        Run(h);
    }

    [Fact]
    public void ZapVma_clears_every_entry_frees_anonymous_frames_and_leaves_the_zero_page()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw);
            for (int i = 0; i < 4; i++)
                await ArchFault.DoUserAddrFault(t, A + i * P, write: true);
            await ArchFault.DoUserAddrFault(t, A + 8 * P, write: false); // the shared zero page
            long anon = t.Machine.Frames.Anon;
            await MmapLock.MmapWriteLock(t, mm);
            long zapped = await ZapPteRange.ZapVma(t, vma, A, A + 16 * P);
            MmapLock.MmapWriteUnlock(t, mm);
            Assert.Equal(5, zapped);
            Assert.Equal(anon - 4, t.Machine.Frames.Anon);
            for (long a = A; a < A + 16 * P; a += P)
                Assert.True(vma.PageTable.Read(a) == Pte.None, $"entry at 0x{a:x} still {Pte.Describe(vma.PageTable.Read(a))} after zap_pte_range");
        });
        Run(h);
    }

    [Fact]
    public void ZapVma_of_a_locked_folio_leaves_the_frame_to_its_locker_who_frees_it_at_unlock()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw);
            await ArchFault.DoUserAddrFault(t, A, write: true);
            long frame = Pte.Frame(vma.PageTable.Read(A));
            Assert.True(t.Machine.Folios.TryLock(t, frame)); // as a migrator would hold it
            long anon = t.Machine.Frames.Anon;
            await MmapLock.MmapWriteLock(t, mm);
            Assert.Equal(1, await ZapPteRange.ZapVma(t, vma, A, A + 16 * P));
            MmapLock.MmapWriteUnlock(t, mm);
            Assert.Equal(anon, t.Machine.Frames.Anon); // not freed under its locker
            Assert.True(t.Machine.Folios.Find(frame)!.FreeOnUnlock);
            t.Machine.Folios.Unlock(t, frame);
            Assert.Equal(anon - 1, t.Machine.Frames.Anon);
        });
        Run(h);
    }

    [Fact]
    public void ZapVma_frees_the_swap_slot_of_a_swapped_out_page()
    {
        var (h, mm) = Machine();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vma = await Mmap.DoMmap(t, mm, A, 16 * P, Rw);
            await ArchFault.DoUserAddrFault(t, A, write: true);
            await ArchFault.DoUserAddrFault(t, A + P, write: true);
            Assert.Equal(2, await PageOut.MadvisePageout(t, mm, A, A + 16 * P));
            Assert.Equal(2, t.Machine.Swap.UsedSlots);
            await MmapLock.MmapWriteLock(t, mm);
            Assert.Equal(2, await ZapPteRange.ZapVma(t, vma, A, A + 16 * P));
            MmapLock.MmapWriteUnlock(t, mm);
            Assert.Equal(0, t.Machine.Swap.UsedSlots);
        });
        Run(h);
    }
}
