using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>PROTOCOL.md §2: the lock operations.</summary>
public class LockRuleTests
{
    private static (SimHarness H, MmStruct Mm) Machine(FaultPolicy p = FaultPolicy.Merged)
    {
        var h = new SimHarness(TestMachines.Spec(p));
        return (h, h.Machine.CreateMm());
    }

    [Fact]
    public void MmapLock_trylock_fails_and_new_readers_queue_once_a_writer_waits()
    {
        var (h, mm) = Machine();
        var r1 = h.NewTask(0, mm); var w = h.NewTask(1, mm); var r2 = h.NewTask(2, mm);
        var order = new List<string>();
        h.Spawn(r1, 0, async t => { await MmapLock.MmapReadLock(t, mm); await t.Delay(10_000); order.Add("r1 unlock"); MmapLock.MmapReadUnlock(t, mm); });
        h.Spawn(w, 1_000, async t => { await MmapLock.MmapWriteLock(t, mm); order.Add("w locked"); await t.Delay(1_000); MmapLock.MmapWriteUnlock(t, mm); });
        h.Spawn(r2, 2_000, async t =>
        {
            Assert.False(MmapLock.MmapReadTrylock(t, mm));
            await MmapLock.MmapReadLock(t, mm);
            order.Add("r2 locked");
            MmapLock.MmapReadUnlock(t, mm);
        });
        h.Run();
        Assert.Equal(["r1 unlock", "w locked", "r2 locked"], order);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void VmaStartRead_fails_while_write_locked_in_epoch_and_succeeds_after_mmap_write_unlock()
    {
        var (h, mm) = Machine();
        var w = h.NewTask(0, mm); var r = h.NewTask(1, mm);
        Vma? vma = null;
        bool duringEpoch = true, afterEpoch = false;
        long seqBefore = -1, seqAfter = -1;
        h.Spawn(w, 0, async t =>
        {
            vma = await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            await MmapLock.MmapWriteLock(t, mm);
            await VmaLock.VmaStartWrite(t, vma);
            seqBefore = mm.MmLockSeq;
            await t.Delay(5_000);
            MmapLock.MmapWriteUnlock(t, mm);
            seqAfter = mm.MmLockSeq;
        });
        h.Spawn(r, 3_000, async t =>
        {
            duringEpoch = VmaLock.VmaStartRead(t, vma!, vma!.Start);
            await t.Delay(10_000);
            afterEpoch = VmaLock.VmaStartRead(t, vma!, vma!.Start);
            if (afterEpoch) VmaLock.VmaEndRead(t, vma!);
        });
        h.Run();
        Assert.False(duringEpoch);
        Assert.True(afterEpoch);
        Assert.Equal(seqBefore + 1, seqAfter);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void VmaStartWrite_waits_for_every_fault_holding_the_read_lock()
    {
        var (h, mm) = Machine();
        var setup = h.NewTask(0, mm); var reader = h.NewTask(1, mm); var writer = h.NewTask(2, mm);
        Vma? vma = null;
        long readerReleased = 0, writerLocked = 0, waited = 0;
        h.Spawn(setup, 0, async t => vma = await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write));
        h.Spawn(reader, 5_000, async t =>
        {
            Assert.True(VmaLock.VmaStartRead(t, vma!, vma!.Start));
            await t.Delay(20_000);
            readerReleased = t.Clock;
            VmaLock.VmaEndRead(t, vma!);
        });
        h.Spawn(writer, 10_000, async t =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            waited = await VmaLock.VmaStartWrite(t, vma!);
            writerLocked = t.Clock;
            Assert.True(vma!.IsWriteLocked);
            MmapLock.MmapWriteUnlock(t, mm);
            Assert.False(vma!.IsWriteLocked);
        });
        h.Run();
        Assert.True(writerLocked >= readerReleased, $"writer locked at {writerLocked}, reader released at {readerReleased}");
        Assert.True(waited > 0);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Downgrade_bumps_mm_lock_seq_and_lets_queued_readers_in()
    {
        var (h, mm) = Machine();
        var w = h.NewTask(0, mm); var r = h.NewTask(1, mm);
        long readerIn = 0, downgradedAt = 0, seq0 = 0;
        h.Spawn(w, 0, async t =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            seq0 = mm.MmLockSeq;
            await t.Delay(5_000);
            downgradedAt = t.Clock;
            MmapLock.MmapWriteDowngrade(t, mm);
            Assert.Equal(seq0 + 1, mm.MmLockSeq);
            await t.Delay(50_000);
            MmapLock.MmapReadUnlock(t, mm);
        });
        h.Spawn(r, 1_000, async t => { await MmapLock.MmapReadLock(t, mm); readerIn = t.Clock; MmapLock.MmapReadUnlock(t, mm); });
        h.Run();
        Assert.InRange(readerIn, downgradedAt, downgradedAt + 10_000);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Releasing_a_lock_not_held_is_reported_as_S6_and_leaves_the_lock_intact()
    {
        var (h, mm) = Machine();
        var a = h.NewTask(0, mm); var b = h.NewTask(1, mm);
        h.Spawn(a, 0, async t => { await MmapLock.MmapReadLock(t, mm); await t.Delay(10_000); MmapLock.MmapReadUnlock(t, mm); });
        h.Spawn(b, 1_000, t => { MmapLock.MmapReadUnlock(t, mm); Assert.Equal(1, mm.MmapLock.ReaderCount); return ValueTask.CompletedTask; });
        h.Run();
        var v = Assert.Single(h.Violations);
        Assert.Equal("S6", v.Invariant);
        Assert.Equal(1, v.Cpu);
    }

    [Fact]
    public void A_wait_for_cycle_is_reported_as_a_deadlock_with_the_locks()
    {
        var (h, mm) = Machine();
        var a = h.NewTask(0, mm);
        h.Spawn(a, 0, async t =>
        {
            await MmapLock.MmapReadLock(t, mm);
            await MmapLock.MmapWriteLock(t, mm); // self-deadlock: write while holding read
        });
        h.Run();
        Assert.Contains(h.Violations, v => v.Invariant == "DEADLOCK" && v.Message.Contains("mmap_lock"));
        Assert.NotEmpty(h.Stalled);
    }
}
