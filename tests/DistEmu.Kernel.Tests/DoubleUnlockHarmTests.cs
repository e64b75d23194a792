using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §8.4 (v3's double vma_end_read, S6) and what it does: an up_read by a task that no longer holds the
/// lock still lowers the rwsem's reader count (kernel/locking/rwsem.c __up_read), so it takes away another reader's
/// hold, and vma_start_write gets through while that reader still runs under the VMA.
/// </summary>
public class DoubleUnlockHarmTests
{
    private const long P = TestMachines.Page;
    private const long A = TestMachines.AreaA;

    [Fact]
    public void Up_read_by_a_non_holder_takes_away_another_readers_hold()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var reader = h.NewTask(0, mm); var stranger = h.NewTask(1, mm); var writer = h.NewTask(2, mm);
        var sem = new RwSemaphore(h.Machine, LockClass.VmaLock, "test");
        Assert.True(sem.TryRead(reader));
        Assert.False(sem.TryWrite(writer));
        Assert.False(sem.Release(stranger, LockMode.Read));
        Assert.True(sem.ReadCount == 0 && sem.ReaderCount == 1 && sem.IsReadHeldBy(reader),
            $"after the stranger's up_read the lock should count 0 readers while {reader} still holds it: counts {sem.ReadCount}, holders {sem.HolderList()}");
        Assert.True(sem.TryWrite(writer), "down_write_trylock must now succeed: the count says nobody reads");
        var v = Assert.Single(h.Violations);
        Assert.Equal("S6", v.Invariant);
        Assert.Contains(reader.ToString(), v.Message);
        Assert.Equal(1, v.Cpu);
    }

    [Fact]
    public void Up_read_by_a_non_holder_of_an_unheld_lock_changes_nothing()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var stranger = h.NewTask(1, mm); var reader = h.NewTask(0, mm);
        var sem = new RwSemaphore(h.Machine, LockClass.VmaLock, "test");
        Assert.False(sem.Release(stranger, LockMode.Read));
        Assert.True(sem.TryRead(reader));
        Assert.Equal(1, sem.ReadCount);
        Assert.Equal("S6", Assert.Single(h.Violations).Invariant);
    }

    /// <summary>
    /// cpu0 maps VMA A (512 pages, one page-table page) and populates 16 pages. The migrator (cpu3) moves page 7, held
    /// up 150 µs before its copy. cpu1 faults on page 7 at 30 µs and waits for the migration. cpu2 faults on page 20 at
    /// 100 µs and is held up 200 µs at handle_mm_fault's entry, under A's read lock. cpu4 munmaps A at 140 µs: its
    /// vma_start_write waits for cpu2's read hold.
    /// </summary>
    private sealed class Scenario
    {
        public long VictimEnd, MunmapEnd, MunmapWait;
        public SimHarness H { get; }

        public Scenario(FaultPolicy policy)
        {
            H = new SimHarness(TestMachines.Spec(policy, nodes: 2, cpusPerNode: 3));
            var mm = H.Machine.CreateMm();
            var setup = H.NewTask(0, mm);
            var faulter = H.NewTask(1, mm);
            var victim = H.NewTask(2, mm);
            var migrator = H.NewTask(3, mm);
            var writer = H.NewTask(4, mm);
            H.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 150_000;
            H.Engine.ScriptedDelays[(victim.Id, PreemptSite.HandleMmFaultEntry)] = 200_000;
            H.Spawn(setup, 0, async t =>
            {
                await Mmap.DoMmap(t, mm, A, 512 * P, VmFlags.Read | VmFlags.Write);
                for (int i = 0; i < 16; i++)
                    await CpuAccess.Access(t, A + i * P, write: true);
            });
            H.Spawn(migrator, 20_000, async t => await Migration.MovePages.MigrateRange(t, mm, A + 7 * P, A + 8 * P, node: 1));
            H.Spawn(faulter, 30_000, async t => await CpuAccess.Access(t, A + 7 * P, write: true));
            H.Spawn(victim, 100_000, async t =>
            {
                await CpuAccess.Access(t, A + 20 * P, write: true);
                VictimEnd = t.Clock;
            });
            H.Spawn(writer, 140_000, async t =>
            {
                MunmapWait = await Munmap.DoMunmap(t, mm, A, A + 512 * P);
                MunmapEnd = t.Clock;
            });
            H.Run();
        }

        public string Timeline => $"cpu2's fault ended at {VictimEnd} ns, munmap returned at {MunmapEnd} ns (waited {MunmapWait} ns)\n{TestMachines.Describe(H)}";
    }

    [Fact]
    public void LockDropped_double_unlock_lets_munmap_write_lock_a_vma_another_fault_still_runs_under()
    {
        var s = new Scenario(FaultPolicy.LockDropped);
        // The second vma_end_read (cpu1's, handle_mm_fault's central release after COMPLETED) ...
        var unlock = s.H.Violations.FirstOrDefault(v => v.Invariant == "S6");
        Assert.True(unlock is { Cpu: 1 } && unlock.Message.Contains("cpu2"), "the double vma_end_read on cpu1 should be reported taking cpu2's hold: " + s.Timeline);
        // ... lets munmap's vma_start_write through while cpu2 is still under the VMA ...
        var s1 = s.H.Violations.FirstOrDefault(v => v.Invariant == "S1" && v.Cpu == 4);
        Assert.True(s1 is not null && s1.Message.Contains("cpu2") && s1.Vma is not null && s1.EmulatedNs > unlock!.EmulatedNs,
            "vma_start_write on cpu4 should be reported getting the lock while cpu2 holds it: " + s.Timeline);
        Assert.True(s.MunmapEnd < s.VictimEnd, "munmap must have finished while cpu2's fault still ran: " + s.Timeline);
        // ... and cpu2 then faults a VMA munmap detached and whose page table it freed.
        var after = s.H.Violations.FirstOrDefault(v => v.Cpu == 2 && v.Invariant is "S9" or "S1" or "S8");
        Assert.True(after is not null && after.Vma == s1!.Vma && after.EmulatedNs >= s.MunmapEnd && after.Policy == "lock-dropped",
            "cpu2's fault should be reported using the VMA munmap took from under it: " + s.Timeline);
    }

    public static TheoryData<string> OtherPolicies => new(FaultPolicies.All.Where(p => p != FaultPolicy.LockDropped).Select(p => p.Name()));

    [Theory]
    [MemberData(nameof(OtherPolicies))]
    public void Without_a_double_unlock_munmap_waits_for_the_fault_under_the_vma(string policyName)
    {
        var s = new Scenario(FaultPolicies.Parse(policyName));
        Assert.True(s.MunmapEnd > s.VictimEnd - s.H.Machine.Cost.FaultEntryNs, "munmap must wait for cpu2's fault: " + s.Timeline);
        Assert.DoesNotContain(s.H.Violations, v => v.Invariant is "S6" or "S1" or "S9");
        if (FaultPolicies.Safe.Contains(FaultPolicies.Parse(policyName)))
            TestMachines.AssertClean(s.H);
    }
}
