using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>PROTOCOL.md §8: historical bugs switched back in are caught; without them nothing is reported.</summary>
public class RegressionTests
{
    /// <summary>Two tasks: one keeps faulting on a mapping, the other mprotects part of it meanwhile.</summary>
    private static SimHarness FaultsAndMprotect(Action<EmuMachine> bugs, FaultPolicy policy = FaultPolicy.Merged)
    {
        var h = new SimHarness(TestMachines.Spec(policy));
        bugs(h.Machine);
        var mm = h.Machine.CreateMm();
        var a = h.NewTask(0, mm); var b = h.NewTask(1, mm);
        h.Spawn(a, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 64 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 64; i++)
                await Cpu.CpuAccess.Access(t, TestMachines.AreaA + i * TestMachines.Page, write: true);
        });
        h.Spawn(b, 20_000, async t =>
            await Mprotect.DoMprotect(t, mm, TestMachines.AreaA, TestMachines.AreaA + 64 * TestMachines.Page, VmFlags.Read));
        h.Run();
        return h;
    }

    [Fact]
    public void Writer_changing_a_vma_without_vma_start_write_is_caught_as_S4()
    {
        // The class of §8.1 in another writer: mprotect changing VMAs without write-locking them, racing faults
        // (ForkTests pins §8.1 itself).
        var h = FaultsAndMprotect(m => m.Bugs.SkipVmaStartWriteInMprotect = true);
        Assert.Contains(h.Violations, v => v.Invariant == "S4");
        Assert.Empty(FaultsAndMprotect(_ => { }).Violations);
    }

    [Fact]
    public void Mmap_unlock_after_a_vma_lock_fault_is_caught_as_S6()
    {
        // §8.3 (Aug 2023): the fault path called mmap_read_unlock while holding only the VMA lock.
        var h = FaultsAndMprotect(m => m.Bugs.MmapUnlockAfterVmaFault = true);
        var v = h.Violations.First(v => v.Invariant == "S6");
        Assert.Contains("mmap_lock", v.Message);
    }

    [Fact]
    public void Using_the_vma_after_a_callee_dropped_its_lock_is_caught_as_S5()
    {
        // §8.6 (2024 hugetlb): the caller used the VMA after the callee had released it (RETRY).
        // A swap-in that finds the folio being read by another task returns RETRY having released the VMA lock.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        h.Machine.Bugs.UseVmaAfterRetryUnlock = true;
        var mm = h.Machine.CreateMm();
        var a = h.NewTask(0, mm); var b = h.NewTask(1, mm); var c = h.NewTask(2, mm);
        h.Spawn(a, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 4; i++)
                await Cpu.CpuAccess.Access(t, TestMachines.AreaA + i * TestMachines.Page, write: true);
            await Memory.PageOut.MadvisePageout(t, mm, TestMachines.AreaA, TestMachines.AreaA + 4 * TestMachines.Page);
        });
        h.Spawn(b, 200_000, async t => await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: false));
        h.Spawn(c, 205_000, async t => await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: false));
        h.Run();
        Assert.True(h.Machine.VmStat.pswpin == 1, $"one swap-in expected, got {h.Machine.VmStat.pswpin}");
        Assert.Contains(h.Violations, v => v.Invariant == "S5" && v.Cpu == 2);
    }

    [Fact]
    public void Swap_in_race_without_the_bug_retries_cleanly()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var a = h.NewTask(0, mm); var b = h.NewTask(1, mm); var c = h.NewTask(2, mm);
        h.Spawn(a, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
            await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: true);
            await Memory.PageOut.MadvisePageout(t, mm, TestMachines.AreaA, TestMachines.AreaA + TestMachines.Page);
        });
        h.Spawn(b, 200_000, async t => await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: false));
        h.Spawn(c, 205_000, async t => await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: false));
        h.Run();
        h.CloseFrameAccounting();
        TestMachines.AssertClean(h);
        Assert.Equal(1, h.Machine.VmStat.pswpin);
        Assert.Equal(1, h.Machine.VmStat.pgmajfault);
        // The second faulter met the locked swap-cache folio: released its VMA lock, waited, retried under mmap_lock.
        Assert.Equal(1, h.Machine.VmStat.vma_lock_retry);
    }
}
