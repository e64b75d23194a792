using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>fork's dup_mmap / copy_page_range, and PROTOCOL.md §8.1 (6.4: fork without write-locking the parent's VMAs).</summary>
public class ForkTests
{
    private const long Page = TestMachines.Page;
    private const long Anon = TestMachines.AreaA, Cache = TestMachines.AreaB;

    [Fact]
    public void DupMmap_copies_every_vma_and_the_entries_of_those_with_anon_pages_which_get_their_own_frames()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var file = h.Machine.CreateFile("data", diskBacked: false);
        var mm = h.Machine.CreateMm();
        var cpu = h.NewTask(0, mm);
        MmStruct? child = null;
        h.Spawn(cpu, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Anon, 64 * Page, VmFlags.Read | VmFlags.Write);
            await Mmap.DoMmap(t, mm, Cache, 16 * Page, VmFlags.Read | VmFlags.Write | VmFlags.Shared, file);
            for (int i = 0; i < 8; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            await Cpu.CpuAccess.Access(t, Anon + 20 * Page, write: false); // the zero page
            for (int i = 0; i < 4; i++) await Cpu.CpuAccess.Access(t, Cache + i * Page, write: true);
            (child, _) = await Fork.DupMmap(t, mm);
        });
        h.Run();
        TestMachines.AssertClean(h);
        Assert.NotNull(child);
        Assert.Equal(mm.Tree.Vmas.Select(v => (v.Start, v.End, v.Flags, v.File)), child!.Tree.Vmas.Select(v => (v.Start, v.End, v.Flags, v.File)));
        Assert.All(child.Tree.Vmas, v => Assert.NotSame(mm, v.Mm));
        for (int i = 0; i < 8; i++)
        {
            long p = mm.PageTable.Read(Anon + i * Page), c = child.PageTable.Read(Anon + i * Page);
            // copy_present_pte on a COW mapping: both sides write-protected.
            Assert.True(Pte.Kind(c) == PteKind.Present && !Pte.IsWritable(c), $"child page {i}: {Pte.Describe(c)}");
            Assert.True(Pte.Kind(p) == PteKind.Present && !Pte.IsWritable(p), $"parent page {i}: {Pte.Describe(p)}");
            Assert.NotEqual(Pte.Frame(p), Pte.Frame(c));
        }
        Assert.Equal(mm.PageTable.Read(Anon + 20 * Page), child.PageTable.Read(Anon + 20 * Page)); // zero page shared
        for (int i = 0; i < 4; i++)
            Assert.Equal(Pte.None, child.PageTable.Read(Cache + i * Page)); // vma_needs_copy: no anon_vma, a fault fills them
        Assert.Equal(Pte.None, child.PageTable.Read(Anon + 30 * Page));
        Assert.Equal(16, h.Machine.Frames.Anon); // 8 parent + 8 child copies
    }

    [Fact]
    public void After_fork_the_first_write_on_either_side_faults_in_do_wp_page_and_the_second_does_not()
    {
        // The faults a perf trace shows after a real fork (COW breaks), which a replay of a forking program must make.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var parentCpu = h.NewTask(0, mm);
        MmStruct? child = null;
        long beforeFork = 0, afterParent = 0, afterChild = 0;
        h.Spawn(parentCpu, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Anon, 64 * Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 8; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            beforeFork = h.Machine.VmStat.pgfault;
            (child, _) = await Fork.DupMmap(t, mm);
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < 8; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            afterParent = h.Machine.VmStat.pgfault;
            for (int i = 0; i < 8; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: false); // reads do not fault
            Assert.Equal(afterParent, h.Machine.VmStat.pgfault);
        });
        h.Run();
        var childCpu = h.NewTask(1, child!);
        h.Spawn(childCpu, h.MaxClock, async t =>
        {
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < 8; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            afterChild = h.Machine.VmStat.pgfault;
        });
        h.Run();
        TestMachines.AssertClean(h);
        Assert.Equal(8, beforeFork);
        Assert.Equal(8 + 8, afterParent);
        Assert.Equal(8 + 8 + 8, afterChild);
        Assert.Equal(16, h.Machine.Frames.Anon); // each side reused its own frame
    }

    [Fact]
    public void ExecMmap_switches_the_task_to_an_empty_mm_and_unmaps_the_old_one()
    {
        // exec_mmap: after it the task's accesses go to the new mm (a fault at an address the old mm mapped is SIGSEGV
        // until the new program maps it), and the old mm's pages are freed.
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var old = h.Machine.CreateMm();
        var fresh = h.Machine.CreateMm();
        var cpu = h.NewTask(0, old);
        long anonBefore = -1;
        bool segvAfter = false;
        h.Spawn(cpu, 0, async t =>
        {
            await Mmap.DoMmap(t, old, Anon, 16 * Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 16; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            anonBefore = h.Machine.Frames.Anon;
            await Exec.ExecMmap(t, fresh, lastUser: true);
            segvAfter = await Cpu.CpuAccess.Access(t, Anon, write: true) == Fault.FaultOutcome.Sigsegv;
            await Mmap.DoMmap(t, fresh, Anon, 16 * Page, VmFlags.Read | VmFlags.Write);
            await Cpu.CpuAccess.Access(t, Anon, write: true);
        });
        h.Run();
        TestMachines.AssertClean(h);
        Assert.Equal(16, anonBefore);
        Assert.Same(fresh, cpu.Mm);
        Assert.Equal(0, old.Tree.Count);
        Assert.True(segvAfter, "the old mapping must be gone for the exec'd program");
        Assert.Equal(1, h.Machine.Frames.Anon); // the old 16 freed, the new program's one page mapped
    }

    [Fact]
    public void Both_address_spaces_unmapped_after_fork_return_every_frame()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var cpu = h.NewTask(0, mm);
        h.Spawn(cpu, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Anon, 600 * Page, VmFlags.Read | VmFlags.Write); // two page-table pages
            for (int i = 0; i < 600; i += 3) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            var (child, _) = await Fork.DupMmap(t, mm);
            await Munmap.DoMunmap(t, child!, Anon, Anon + 600 * Page);
            await Munmap.DoMunmap(t, mm, Anon, Anon + 600 * Page);
        });
        h.Run();
        h.CloseFrameAccounting();
        TestMachines.AssertClean(h);
        Assert.Equal(0, h.Machine.Frames.Anon);
    }

    /// <summary>
    /// The LKML case with fork as the writer: a fault on the parent's VMA A sleeps in migration_entry_wait holding that
    /// VMA's read lock (merged) while another thread forks; the child exits at once.
    /// </summary>
    private static LkmlScenario ForkDuringMigrationWait(bool bug) =>
        new(FaultPolicy.Merged, async (t, mm) =>
        {
            var (child, waited) = await Fork.DupMmap(t, mm);
            await Munmap.DoMunmap(t, child!, Anon, Cache + 512 * Page);
            return waited;
        }, bugs: m => m.Bugs.ForkWithoutVmaWriteLock = bug);

    [Fact]
    public void Fork_write_locks_the_parent_vma_so_it_waits_for_a_fault_holding_its_read_lock()
    {
        var s = ForkDuringMigrationWait(bug: false);
        TestMachines.AssertClean(s.H);
        // vma_start_write waited for the faulter, which slept on the migration holding the VMA read lock (merged).
        Assert.True(s.MunmapWaitedForMigration, "fork did not wait for the migration the faulter slept on: " + s.Timeline);
        Assert.True(s.MunmapWriterWait >= 100_000, "the faulter held the VMA for ~120 µs: " + s.Timeline);
    }

    [Fact]
    public void Fork_without_vma_start_write_on_the_parent_is_caught_as_S4()
    {
        // §8.1 (6.4, fixed by "fork: lock VMAs of the parent process when forking"): dup_mmap copied a VMA that a fault
        // held under its per-VMA lock. The copy then meets the migration entry instead, and waits for the folio only.
        var s = ForkDuringMigrationWait(bug: true);
        var h = s.H;
        Assert.Contains(h.Violations, v => v.Invariant == "S4" && v.Cpu == 2 && v.Message.Contains("dup_mmap"));
        // The race itself: the page table was copied while the faulter (cpu1) held the VMA read lock.
        Assert.Contains(h.Violations, v => v.Invariant == "S4" && v.Message.Contains("cpu1 hold(s) its read lock"));
        Assert.True(s.MunmapWriterWait < 1_000, "without the VMA write lock fork does not wait for the fault's read hold: " + s.Timeline);
        Assert.Equal(17, h.Machine.Frames.Anon); // the parent's 16 + 1 pages; the child's copies were all returned
    }

    [Fact]
    public void Fork_fails_with_enomem_and_leaves_no_half_built_child_when_the_node_runs_out()
    {
        var spec = TestMachines.Spec(FaultPolicy.Merged) with { MemoryPerNodeBytes = 1024 * Page };
        var h = new SimHarness(spec);
        var mm = h.Machine.CreateMm();
        var cpu = h.NewTask(0, mm);
        MmStruct? child = new(h.Machine, -1);
        h.Spawn(cpu, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Anon, 1024 * Page, VmFlags.Read | VmFlags.Write);
            for (int i = 0; i < 700; i++) await Cpu.CpuAccess.Access(t, Anon + i * Page, write: true);
            (child, _) = await Fork.DupMmap(t, mm); // 700 more frames of node 0: more than it has left
        });
        h.Run();
        h.CloseFrameAccounting();
        TestMachines.AssertClean(h);
        Assert.Null(child);
        Assert.Equal(700, h.Machine.Frames.Anon); // only the parent's pages remain mapped
        Assert.False(mm.MmapLock.IsLocked, "fork returned -ENOMEM still holding the parent's mmap_lock");
    }

    public static TheoryData<string> SafePolicies => ExplorationTests.SafePolicies;

    /// <summary>
    /// One seeded schedule: three threads fault over a shared anonymous VMA and a file VMA, a fourth migrates pages,
    /// scans for NUMA hinting and forks twice, each child exiting at once (exit_mmap).
    /// </summary>
    private static SimHarness ForkSchedule(FaultPolicy policy, long seed, bool bug = false)
    {
        var h = new SimHarness(TestMachines.Spec(policy, nodes: 2, cpusPerNode: 2), seed, exploration: Exploration.Default);
        h.Machine.Bugs.ForkWithoutVmaWriteLock = bug;
        var file = h.Machine.CreateFile("lib", diskBacked: true);
        var mm = h.Machine.CreateMm();
        var rng = new Random((int)seed);
        var setup = h.NewTask(0, mm);
        h.Spawn(setup, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, Anon, 256 * Page, VmFlags.Read | VmFlags.Write);
            await Mmap.DoMmap(t, mm, Cache, 64 * Page, VmFlags.Read, file);
        });
        for (int i = 1; i < 4; i++)
        {
            int cpu = i;
            var pages = Enumerable.Range(0, 40).Select(_ => (Anon: rng.Next(2) == 0, Page: rng.Next(64), Write: rng.Next(3) > 0)).ToList();
            h.Spawn(h.NewTask(cpu, mm), 5_000 + cpu * 1_000, async t =>
            {
                if (cpu == 3)
                {
                    await Migration.MovePages.MigrateRange(t, mm, Anon, Anon + 32 * Page, node: 1);
                    await Migration.NumaScan.ChangeProtNuma(t, mm, Anon, Anon + 64 * Page);
                    for (int f = 0; f < 2; f++)
                    {
                        var (child, _) = await Fork.DupMmap(t, mm);
                        await Munmap.DoMunmap(t, child!, Anon, Cache + 64 * Page);
                    }
                    return;
                }
                foreach (var (anon, page, write) in pages)
                    await Cpu.CpuAccess.Access(t, (anon ? Anon : Cache) + page * Page, write && anon);
            });
        }
        h.Run();
        h.CloseFrameAccounting();
        return h;
    }

    [Theory]
    [MemberData(nameof(SafePolicies))]
    public void Fork_among_faults_migrations_and_numa_scans_is_clean_in_300_schedules(string policyName)
    {
        var policy = FaultPolicies.Parse(policyName);
        for (long seed = 1; seed <= 300; seed++)
        {
            var h = ForkSchedule(policy, seed);
            Assert.True(h.Violations.Count == 0 && h.Stalled.Count == 0, $"seed {seed} under {policyName}:\n{TestMachines.Describe(h)}");
            Assert.True(h.Machine.Frames.Conserved, $"seed {seed}: frames not conserved: {h.Machine.Frames}");
        }
    }

    [Fact]
    public void Exploration_finds_a_fault_racing_the_copy_when_fork_skips_vma_start_write()
    {
        for (long seed = 1; seed <= 300; seed++)
        {
            var h = ForkSchedule(FaultPolicy.Merged, seed, bug: true);
            Assert.Contains(h.Violations, v => v.Invariant == "S4" && v.Message.Contains("dup_mmap")); // the rule, every time
            var race = h.Violations.FirstOrDefault(v => v.Invariant == "S4" && v.Message.Contains("races the copy"));
            if (race is null) continue;
            var again = ForkSchedule(FaultPolicy.Merged, seed, bug: true);
            Assert.Equal(h.Machine.Events.Hash, again.Machine.Events.Hash); // the seed reproduces it
            return;
        }
        Assert.Fail("300 schedules with the §8.1 bug switched in and no fault racing the page-table copy");
    }
}
