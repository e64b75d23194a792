using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
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

    /// <summary>
    /// A task writes a page of a mapping, another mprotects the mapping read-only, and a third writes the page again
    /// <paramref name="after"/> ns after the mprotect's mmap_write_unlock (its first write there: its TLB is cold).
    /// Returns the harness, the third task's outcome, and the page's entry at the end.
    /// </summary>
    private static (SimHarness H, Fault.FaultOutcome Outcome, long Pte) WriteAfterMprotect(bool bug, long after)
    {
        long unlockedAt = 0;
        SimHarness Build(bool withReader, out Func<Fault.FaultOutcome> outcome)
        {
            var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
            h.Machine.Bugs.MmLockSeqWithoutOrdering = bug;
            var mm = h.Machine.CreateMm();
            var result = Fault.FaultOutcome.Handled;
            outcome = () => result;
            h.Spawn(h.NewTask(0, mm), 0, async t =>
            {
                await Mmap.DoMmap(t, mm, TestMachines.AreaA, 16 * TestMachines.Page, VmFlags.Read | VmFlags.Write);
                await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: true);
            });
            h.Spawn(h.NewTask(1, mm), 10_000, async t =>
            {
                await Mprotect.DoMprotect(t, mm, TestMachines.AreaA, TestMachines.AreaA + 16 * TestMachines.Page, VmFlags.Read);
                unlockedAt = t.Clock; // mmap_write_unlock is its last step
            });
            if (withReader)
                h.Spawn(h.NewTask(2, mm), unlockedAt + after, async t => result = await Cpu.CpuAccess.Access(t, TestMachines.AreaA, write: true));
            h.Run();
            return h;
        }
        Build(withReader: false, out _); // learn when the mprotect ends (the same schedule: the sim engine is deterministic)
        var h = Build(withReader: true, out var outcome);
        var mm = h.Machine.Mms[0];
        return (h, outcome(), mm.Tree.Find(TestMachines.AreaA)!.PageTable.Read(TestMachines.AreaA));
    }

    [Fact]
    public void Mm_lock_seq_without_acquire_release_lets_a_fault_use_stale_flags_and_is_caught_as_S4()
    {
        // §8.2 (6.4, fixed by b1f02b95758d): a reader that finds the write section over can still read the VMA as it was
        // before it. Here: the flags from before mprotect(PROT_READ), so a write fault passes access_error and
        // do_wp_page makes the entry writable in a read-only VMA.
        var (h, outcome, pte) = WriteAfterMprotect(bug: true, after: 10);
        var v = Assert.Single(h.Violations);
        Assert.Equal("S4", v.Invariant);
        Assert.Equal("vma_start_read, stale vm_flags", v.Site);
        Assert.Equal(2, v.Cpu);
        Assert.Contains("read vm_flags rw-p from before it", v.Message);
        Assert.Equal(Fault.FaultOutcome.Handled, outcome);
        Assert.True(Pte.IsWritable(pte), "the stale flags let the write through: a writable entry in an r--p VMA");

        // Outside the window, the stores are visible even with the bug: the write is refused.
        var (late, lateOutcome, _) = WriteAfterMprotect(bug: true, after: 2_000);
        Assert.Empty(late.Violations);
        Assert.Equal(Fault.FaultOutcome.Sigsegv, lateOutcome);
    }

    [Fact]
    public void With_acquire_release_on_mm_lock_seq_the_same_write_is_refused_cleanly()
    {
        var (h, outcome, pte) = WriteAfterMprotect(bug: false, after: 10);
        Assert.Empty(h.Violations);
        Assert.Equal(Fault.FaultOutcome.Sigsegv, outcome);
        Assert.False(Pte.IsWritable(pte));
    }

    [Fact]
    public void Exploration_finds_the_mm_lock_seq_ordering_bug_and_names_its_seed()
    {
        var template = new SimRunOptions
        {
            Machine = TestMachines.Spec(FaultPolicy.Merged, 2, 4),
            Workload = "mixed",
            OpsPerTask = 150,
            Bugs = ["mm-lock-seq-without-acquire-release"],
        };
        var r = ScheduleExplorer.Explore(template, firstSeed: 1, schedules: 300, jobs: 2, stopAtFirst: true);
        var f = Assert.Single(r.Findings);
        Assert.Equal(("S4", "vma_start_read, stale vm_flags"), (f.Invariant, f.Site));
        var again = SimRun.Run(template with { Seed = f.FirstSeed, Exploration = Exploration.Default });
        Assert.Contains(again.Machine.Sanitizer.Violations, v => v.Site == f.Site && v.EmulatedNs == f.First!.EmulatedNs);
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
        // Both left the VMA lock with RETRY: the first to read the page (the read leaves the folio locked, so
        // folio_lock_or_retry releases the lock and waits), the second meeting that locked swap-cache folio.
        Assert.Equal(2, h.Machine.VmStat.vma_lock_retry);
        Assert.Equal(3, h.Machine.VmStat.pgfault); // a's first touch, b's and c's swap-in faults, each once
    }
}
