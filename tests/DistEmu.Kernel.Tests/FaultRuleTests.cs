using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Fault;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>PROTOCOL.md §2 (lookups), §3 (handle_mm_fault and its lock contract) and §5 (the arch loop).</summary>
public class FaultRuleTests
{
    private const long P = TestMachines.Page;
    private const VmFlags RW = VmFlags.Read | VmFlags.Write;

    [Fact]
    public void LockVmaUnderRcu_aborts_on_an_anonymous_vma_without_anon_vma_then_the_vma_path_succeeds()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, RW);
            await CpuAccess.Access(t, TestMachines.AreaA, write: true);
            Assert.Equal(1, t.Machine.VmStat.vma_lock_abort);
            Assert.Equal(0, t.Machine.VmStat.vma_lock_success);
            Assert.True(mm.Tree.Find(TestMachines.AreaA)!.HasAnonVma);
            await CpuAccess.Access(t, TestMachines.AreaA + P, write: true);
            Assert.Equal(1, t.Machine.VmStat.vma_lock_success);
        });
        h.Run();
        Assert.Equal(2, h.Machine.VmStat.pgfault);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void MmAccountFault_counts_a_retried_fault_once_on_the_attempt_that_finished_it()
    {
        // vma-bailout: the faulter meets the migration entry under the VMA lock, handle_mm_fault returns RETRY, and the
        // fault finishes under mmap_lock: two handle_mm_fault calls, one pgfault (mm_account_fault skips RETRY).
        var s = new LkmlScenario(FaultPolicy.VmaBailout, sameVma: false);
        var v = s.H.Machine.VmStat;
        Assert.Equal(1, v.vma_lock_retry);
        Assert.Equal(v.Faults, v.pgfault);
        Assert.Equal(v.Faults + 1, v.HandleMmFaultCalls);
        TestMachines.AssertClean(s.H);
    }

    [Fact]
    public void LockVmaUnderRcu_counts_a_miss_when_the_vma_it_found_was_detached_and_looks_up_again()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var faulter = h.NewTask(1, mm);
        // The faulter is delayed between the RCU lookup and vma_start_read while munmap detaches the VMA and
        // ends its write epoch: the trylock succeeds on a detached VMA.
        h.Engine.ScriptedDelays[(faulter.Id, PreemptSite.LookupToVmaStartRead)] = 50_000;
        FaultOutcome outcome = FaultOutcome.Handled;
        h.Spawn(setup, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, RW);
            await CpuAccess.Access(t, TestMachines.AreaA, write: true);
        });
        h.Spawn(faulter, 10_000, async t => outcome = await CpuAccess.Access(t, TestMachines.AreaA + P, write: true));
        h.Spawn(setup, 12_000, async t => await Munmap.DoMunmap(t, mm, TestMachines.AreaA, TestMachines.AreaA + 8 * P));
        h.Run();
        Assert.Equal(1, h.Machine.VmStat.vma_lock_miss);
        Assert.Equal(FaultOutcome.Sigsegv, outcome);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void A_read_maps_the_zero_page_and_a_later_write_copies_it()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, RW);
            await CpuAccess.Access(t, TestMachines.AreaA, write: false);
            long pte = mm.PageTable.Read(TestMachines.AreaA);
            Assert.Equal(Pte.ZeroFrame, Pte.Frame(pte));
            Assert.False(Pte.IsWritable(pte));
            Assert.Equal(0, t.Machine.Frames.Anon);
            await CpuAccess.Access(t, TestMachines.AreaA, write: true);
            pte = mm.PageTable.Read(TestMachines.AreaA);
            Assert.NotEqual(Pte.ZeroFrame, Pte.Frame(pte));
            Assert.True(Pte.IsWritable(pte));
            Assert.Equal(1, t.Machine.Frames.Anon);
        });
        h.Run();
        Assert.Equal(2, h.Machine.VmStat.Faults);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void A_second_access_hits_the_tlb_and_takes_no_fault()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, RW);
            await CpuAccess.Access(t, TestMachines.AreaA, write: true);
            long hits = t.Tlb!.Hits;
            await CpuAccess.Access(t, TestMachines.AreaA + 8, write: true);
            Assert.Equal(hits + 1, t.Tlb.Hits);
        });
        h.Run();
        Assert.Equal(1, h.Machine.VmStat.Faults);
    }

    [Theory]
    [InlineData(FaultPolicy.Merged)]
    [InlineData(FaultPolicy.MmapOnly)]
    public void An_access_error_is_sigsegv_and_under_the_vma_lock_falls_back_without_counting(FaultPolicy policy)
    {
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        FaultOutcome write = FaultOutcome.Handled, none = FaultOutcome.Handled;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, VmFlags.Read);
            await Mmap.DoMmap(t, mm, TestMachines.AreaB, 8 * P, VmFlags.None);
            await CpuAccess.Access(t, TestMachines.AreaA, write: false); // mmap path: no anon_vma needed, zero page
            write = await CpuAccess.Access(t, TestMachines.AreaA, write: true);
            none = await CpuAccess.Access(t, TestMachines.AreaB, write: false);
        });
        h.Run();
        Assert.Equal(FaultOutcome.Sigsegv, write);
        Assert.Equal(FaultOutcome.Sigsegv, none);
        Assert.Equal(2, h.Machine.VmStat.Sigsegv);
        TestMachines.AssertClean(h);
    }

    [Theory]
    [InlineData(FaultPolicy.Merged, VmFault.Retry, true, false)]
    [InlineData(FaultPolicy.Merged, VmFault.Completed, true, false)]
    [InlineData(FaultPolicy.Merged, VmFault.Done, true, true)]
    [InlineData(FaultPolicy.Merged, VmFault.Major, false, true)]
    [InlineData(FaultPolicy.Merged, VmFault.Retry, false, false)]
    [InlineData(FaultPolicy.VmaBailout, VmFault.Retry, true, true)]
    [InlineData(FaultPolicy.VmaUnlocked, VmFault.VmaUnlocked, true, false)]
    [InlineData(FaultPolicy.VmaUnlocked, VmFault.Done, true, true)]
    [InlineData(FaultPolicy.PtlDrop, VmFault.Completed, true, false)]
    [InlineData(FaultPolicy.MmapOnly, VmFault.Completed, false, false)]
    public void The_result_contract_says_who_holds_the_lock(FaultPolicy p, VmFault result, bool underVmaLock, bool callerHolds) =>
        Assert.Equal(callerHolds, MmFault.CallerStillHolds(p, result, underVmaLock));

    [Theory]
    // 6.6: both faults leave the VMA lock (a's page is not cached; b's is locked, so fault-around skips it).
    [InlineData(FaultPolicy.Merged, 2)]
    // 6.12: both run filemap_fault under the VMA lock and release it to sleep: a for its read
    // (maybe_unlock_mmap_for_io), b for a's locked folio (lock_folio_maybe_drop_mmap).
    [InlineData(FaultPolicy.V6_12, 2)]
    public void A_file_page_being_read_makes_the_second_fault_release_wait_and_retry(FaultPolicy policy, long vmaRetries)
    {
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        var file = h.Machine.CreateFile("/data/f", diskBacked: true);
        var a = h.NewTask(0, mm); var b = h.NewTask(1, mm);
        long bDone = 0, aDone = 0;
        h.Spawn(a, 0, async t =>
        {
            // A shared read-only file mapping; a's first touch reads the page (and the rest of the 8-page mapping: the
            // read-around window is clamped to it) from disk (20 µs) under their folio locks, without its fault lock.
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, VmFlags.Read | VmFlags.Shared, file);
            await CpuAccess.Access(t, TestMachines.AreaA, write: false);
            aDone = t.Clock;
        });
        h.Spawn(b, 5_000, async t =>
        {
            await CpuAccess.Access(t, TestMachines.AreaA, write: false);
            bDone = t.Clock;
        });
        h.Run();
        Assert.Equal(1, h.Machine.VmStat.pgmajfault);
        Assert.Equal(vmaRetries, h.Machine.VmStat.vma_lock_retry);
        Assert.True(bDone >= aDone - h.Machine.Cost.LockHandoffNs, $"b finished at {bDone}, a's read at {aDone}");
        Assert.Equal(8, file.CachedPages);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void DoReadFault_under_the_vma_lock_in_6_6_maps_only_a_cached_page_by_fault_around_and_retries_otherwise()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var file = h.Machine.CreateFile("/data/f", diskBacked: true);
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vs = t.Machine.VmStat;
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, VmFlags.Read | VmFlags.Write, file); // private: writes copy
            await CpuAccess.Access(t, TestMachines.AreaA, write: false); // not cached: RETRY, read in under mmap_lock
            Assert.Equal((0L, 1L), (vs.vma_lock_success, vs.vma_lock_retry));
            await Munmap.DoMunmap(t, mm, TestMachines.AreaA, TestMachines.AreaA + 8 * P);
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, VmFlags.Read | VmFlags.Write, file);
            await CpuAccess.Access(t, TestMachines.AreaA, write: false); // cached and unlocked: fault-around maps it
            Assert.Equal((1L, 1L), (vs.vma_lock_success, vs.vma_lock_retry));
            await CpuAccess.Access(t, TestMachines.AreaA + P, write: true); // do_cow_fault: RETRY at once under the VMA lock
            Assert.Equal((1L, 2L), (vs.vma_lock_success, vs.vma_lock_retry));
        });
        h.Run();
        TestMachines.AssertClean(h);
    }

    [Theory]
    // 6.6: lock_vma_under_rcu gives up on an anonymous VMA with no anon_vma (the first fault of a fresh mapping).
    [InlineData(FaultPolicy.Merged, 1, 0)]
    // 6.12: no such check; __vmf_anon_prepare trylocks mmap_lock and prepares the anon_vma under the VMA lock.
    [InlineData(FaultPolicy.V6_12, 0, 1)]
    public void LockVmaUnderRcu_and_vmf_anon_prepare_on_the_first_fault_of_a_fresh_anonymous_mapping(FaultPolicy policy, long aborts, long successes)
    {
        var h = new SimHarness(TestMachines.Spec(policy));
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, TestMachines.AreaA, 8 * P, RW);
            await CpuAccess.Access(t, TestMachines.AreaA, write: true);
        });
        h.Run();
        var vs = h.Machine.VmStat;
        Assert.Equal((aborts, successes, 0L), (vs.vma_lock_abort, vs.vma_lock_success, vs.vma_lock_retry));
        Assert.True(mm.Tree.Find(TestMachines.AreaA)!.HasAnonVma);
        TestMachines.AssertClean(h);
    }
}
