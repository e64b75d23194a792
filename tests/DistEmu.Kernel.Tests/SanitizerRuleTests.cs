using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §7, check by check: each of KernelSanitizer's S-rules fires on a violation built by hand, and stays
/// silent on the legal case next to it. The protocol tests show the rules hold on the kernel's own paths; these show the
/// checks themselves can see a violation (a check that never fires would make every clean run meaningless).
/// </summary>
public class SanitizerRuleTests
{
    /// <summary>One task maps an anonymous 16-page VMA at AreaA, then runs <paramref name="body"/>; the invariants reported.</summary>
    private static List<string> Reported(Func<EmuTask, MmStruct, Vma, ValueTask> body, FaultPolicy policy = FaultPolicy.Merged)
    {
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vma = await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            await body(t, mm, vma);
        });
        h.Run();
        return h.Violations.Select(v => v.Invariant).ToList();
    }

    private static void Fires(string invariant, List<string> reported) =>
        Assert.True(reported.Contains(invariant), $"{invariant} not reported on its violation; reported: [{string.Join(", ", reported)}]");

    private static void Silent(List<string> reported) =>
        Assert.True(reported.Count == 0, $"a legal case was reported as [{string.Join(", ", reported)}]");

    [Fact]
    public void S5_fires_on_a_VMA_used_with_neither_its_lock_nor_mmap_lock_and_not_under_its_read_lock()
    {
        Fires("S5", Reported((t, _, vma) => { t.Machine.Sanitizer.CheckVmaUse(t, vma, "test"); return default; }));
        Silent(Reported((t, _, vma) =>
        {
            Assert.True(VmaLock.VmaStartRead(t, vma, vma.Start));
            t.Machine.Sanitizer.CheckVmaUse(t, vma, "test");
            VmaLock.VmaEndRead(t, vma);
            return default;
        }));
    }

    [Fact]
    public void S8_fires_on_a_page_table_read_unlocked_or_after_it_was_freed_and_not_under_mmap_lock()
    {
        Fires("S8", Reported((t, _, vma) =>
        {
            t.Machine.Sanitizer.CheckPageTableAccess(t, vma, vma.PageTable.GetOrAlloc(vma.Start), vma.Start, "test");
            return default;
        }));
        Fires("S8", Reported(async (t, mm, vma) =>
        {
            var page = vma.PageTable.GetOrAlloc(vma.Start);
            page.Freed = true;
            await MmapLock.MmapReadLock(t, mm); // holding a lock does not make a freed page table live again
            t.Machine.Sanitizer.CheckPageTableAccess(t, vma, page, vma.Start, "test");
            MmapLock.MmapReadUnlock(t, mm);
        }));
        Silent(Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapReadLock(t, mm);
            t.Machine.Sanitizer.CheckPageTableAccess(t, vma, vma.PageTable.GetOrAlloc(vma.Start), vma.Start, "test");
            MmapLock.MmapReadUnlock(t, mm);
        }));
    }

    [Fact]
    public void S9_fires_on_a_fault_on_a_detached_VMA_only()
    {
        Silent(Reported((t, _, vma) => { t.Machine.Sanitizer.CheckNotDetached(t, vma, vma.Start); return default; }));
        Fires("S9", Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            await VmaLock.VmaStartWrite(t, vma);
            VmaLock.VmaMarkDetached(t, vma);
            t.Machine.Sanitizer.CheckNotDetached(t, vma, vma.Start);
            MmapLock.MmapWriteUnlock(t, mm);
        }));
    }

    [Fact]
    public void S4_fires_on_a_VMA_change_without_mmap_lock_write_or_without_vma_start_write()
    {
        Fires("S4", Reported((t, _, vma) => { t.Machine.Sanitizer.CheckVmaChange(t, vma, "test"); return default; }));
        Fires("S4", Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            t.Machine.Sanitizer.CheckVmaChange(t, vma, "test"); // mmap_lock write, but the VMA not write-locked
            MmapLock.MmapWriteUnlock(t, mm);
        }));
        Silent(Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            await VmaLock.VmaStartWrite(t, vma);
            t.Machine.Sanitizer.CheckVmaChange(t, vma, "test");
            MmapLock.MmapWriteUnlock(t, mm);
        }));
    }

    [Fact]
    public void S1_fires_on_a_write_lock_published_without_mmap_lock_write_and_on_a_read_lock_granted_in_the_write_epoch()
    {
        Fires("S1", Reported((t, _, vma) => { t.Machine.Sanitizer.CheckWriteLockPublished(t, vma); return default; }));
        Fires("S1", Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            await VmaLock.VmaStartWrite(t, vma);
            t.Machine.Sanitizer.CheckReadLockGranted(t, vma, vma.Start);
            MmapLock.MmapWriteUnlock(t, mm);
        }));
        Silent(Reported(async (t, mm, vma) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            t.Machine.Sanitizer.CheckWriteLockPublished(t, vma);
            MmapLock.MmapWriteUnlock(t, mm);
            t.Machine.Sanitizer.CheckReadLockGranted(t, vma, vma.Start); // the epoch ended with the unlock
        }));
    }

    [Fact]
    public void S2_fires_on_mm_lock_seq_moving_by_other_than_one_or_by_a_non_writer()
    {
        Fires("S2", Reported((t, mm, _) => { t.Machine.Sanitizer.CheckSeqBump(t, mm, 5, 6); return default; }));
        Fires("S2", Reported(async (t, mm, _) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            t.Machine.Sanitizer.CheckSeqBump(t, mm, 5, 7);
            MmapLock.MmapWriteUnlock(t, mm);
        }));
        Silent(Reported(async (t, mm, _) =>
        {
            await MmapLock.MmapWriteLock(t, mm);
            t.Machine.Sanitizer.CheckSeqBump(t, mm, 5, 6);
            MmapLock.MmapWriteUnlock(t, mm);
        }));
    }

    [Fact]
    public void S6_fires_on_an_attempt_ending_with_a_lock_held_and_on_a_folio_unlock_by_a_non_holder()
    {
        Fires("S6", Reported((t, _, vma) =>
        {
            Assert.True(VmaLock.VmaStartRead(t, vma, vma.Start));
            t.Machine.Sanitizer.CheckHoldsNothing(t, "test");
            VmaLock.VmaEndRead(t, vma);
            return default;
        }));
        Fires("S6", Reported((t, _, _) => { t.Machine.Folios.Unlock(t, 12345); return default; }));
        Silent(Reported((t, _, vma) =>
        {
            Assert.True(VmaLock.VmaStartRead(t, vma, vma.Start));
            VmaLock.VmaEndRead(t, vma);
            t.Machine.Sanitizer.CheckHoldsNothing(t, "test");
            return default;
        }));
    }

    [Fact]
    public void S7_fires_when_the_lock_held_after_handle_mm_fault_is_not_what_the_policy_says()
    {
        // Under merged, RETRY means the callee released the VMA lock: still holding it is a violation; 0 means the caller does.
        Fires("S7", Reported((t, _, vma) =>
        {
            t.Machine.Sanitizer.CheckResultContract(t, vma, vma.Start, VmFault.Retry, true, stillHeld: true,
                expectedHeld: MmFault.CallerStillHolds(FaultPolicy.Merged, VmFault.Retry, underVmaLock: true));
            return default;
        }));
        Silent(Reported((t, _, vma) =>
        {
            t.Machine.Sanitizer.CheckResultContract(t, vma, vma.Start, VmFault.Done, true, stillHeld: true,
                expectedHeld: MmFault.CallerStillHolds(FaultPolicy.Merged, VmFault.Done, underVmaLock: true));
            return default;
        }));
    }

    [Fact]
    public void S12_fires_on_a_migration_entry_for_a_folio_the_installer_has_not_locked()
    {
        const long frame = 777;
        Fires("S12", Reported((t, _, vma) => { t.Machine.Sanitizer.CheckMigrationEntryInstall(t, vma, vma.Start, frame); return default; }));
        Silent(Reported((t, _, vma) =>
        {
            Assert.True(t.Machine.Folios.TryLock(t, frame));
            t.Machine.Sanitizer.CheckMigrationEntryInstall(t, vma, vma.Start, frame);
            t.Machine.Folios.Unlock(t, frame);
            return default;
        }));
    }

    [Fact]
    public void S13_fires_on_a_sleep_holding_a_PTL_and_not_on_the_PTL_spin_itself()
    {
        const long frame = 778;
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        Vma? vma = null;
        var locker = h.NewTask(0, mm);
        var sleeper = h.NewTask(1, mm);
        h.Spawn(locker, 0, async t =>
        {
            vma = await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            Assert.True(t.Machine.Folios.TryLock(t, frame));
            await t.Delay(10_000);
            t.Machine.Folios.Unlock(t, frame);
        });
        h.Spawn(sleeper, 1_000, async t =>
        {
            var page = vma!.PageTable.GetOrAlloc(vma.Start);
            await page.Ptl.AcquireWrite(t);
            await t.Machine.Folios.Lock(t, frame); // folio_lock sleeps: with the PTL held, S13
            t.Machine.Folios.Unlock(t, frame);
            page.Ptl.Release(t, LockMode.Write);
        });
        h.Run();
        Fires("S13", h.Violations.Select(v => v.Invariant).ToList());

        // The legal order: drop the PTL, then sleep on the folio (migration_entry_wait's).
        var legal = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm2 = legal.Machine.CreateMm();
        Vma? vma2 = null;
        legal.Spawn(legal.NewTask(0, mm2), 0, async t =>
        {
            vma2 = await Mmap.DoMmap(t, mm2, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            Assert.True(t.Machine.Folios.TryLock(t, frame));
            await t.Delay(10_000);
            t.Machine.Folios.Unlock(t, frame);
        });
        legal.Spawn(legal.NewTask(1, mm2), 1_000, async t =>
        {
            var page = vma2!.PageTable.GetOrAlloc(vma2.Start);
            await page.Ptl.AcquireWrite(t);
            page.Ptl.Release(t, LockMode.Write);
            await t.Machine.Folios.Lock(t, frame);
            t.Machine.Folios.Unlock(t, frame);
        });
        legal.Run();
        TestMachines.AssertClean(legal);
    }
}
