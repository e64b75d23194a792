using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// PROTOCOL.md §4 with anonymous THPs (mm/huge_memory.c): do_huge_pmd_anonymous_page and its fallback, a THP migrated
/// as one folio (set_pmd_migration_entry, one 2 MiB copy, remove_migration_pmd) with pmd_migration_entry_wait,
/// do_huge_pmd_numa_page, __split_huge_pmd on a partial munmap/mprotect, zap_huge_pmd, and the counters.
/// </summary>
public class ThpRuleTests
{
    private const long P = TestMachines.Page;
    private const int N = 512;
    private const long H = N * P;
    private const VmFlags RW = VmFlags.Read | VmFlags.Write;
    private static long A => TestMachines.AreaA;

    private static SimHarness Harness(FaultPolicy policy = FaultPolicy.Merged, TransparentHugepage thp = TransparentHugepage.Always, long memoryPerNode = 256L << 20) =>
        new(TestMachines.Spec(policy, thp: thp) with { MemoryPerNodeBytes = memoryPerNode });

    private static string Pmd(MmStruct mm, long addr) =>
        mm.PageTable.Lookup(addr) is { } p ? (p.IsHuge ? $"PMD-mapped THP, head frame {p.HugeHead}, entry {Pte.Describe(p[0])}" : $"PTE table with {p.Used} entries") : "pmd_none";

    [Fact]
    public void Thp_write_fault_on_an_empty_pmd_maps_512_pages_with_one_fault_and_counts_thp_fault_alloc()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 2 * H, RW);
            for (long a = A; a < A + 2 * H; a += P) await CpuAccess.Access(t, a, write: true);
        });
        h.Run();
        h.CloseFrameAccounting();
        var v = h.Machine.VmStat;
        Assert.True(v.Faults == 2 && v.thp_fault_alloc == 2, $"1,024 writes over two 2 MiB ranges took {v.Faults} faults and {v.thp_fault_alloc} thp_fault_alloc; expected one fault per 2 MiB");
        Assert.Equal(0, v.thp_fault_fallback);
        Assert.Equal(2 * N, h.Machine.Frames.Anon);
        var page = mm.PageTable.Lookup(A)!;
        Assert.True(page.IsHuge, Pmd(mm, A));
        for (int i = 0; i < N; i++)
            Assert.Equal(Pte.Present(page.HugeHead + i, writable: true), page[i]);
        Assert.Equal(0, page.HugeHead % N);
        Assert.True(h.Machine.Folios.IsLarge(page.HugeHead));
        // The fault's cost includes clear_huge_page: 2 MiB at local bandwidth.
        Assert.True(h.MaxClock >= 2 * h.Machine.ClearHugePageNs, $"two THP faults ended at {h.MaxClock} ns, less than two 2 MiB clears ({h.Machine.ClearHugePageNs} ns each)");
        TestMachines.AssertClean(h);
    }

    [Theory]
    [InlineData(TransparentHugepage.Never, VmFlags.None, 0, "transparent_hugepage=never")]
    [InlineData(TransparentHugepage.Madvise, VmFlags.None, 0, "madvise without MADV_HUGEPAGE")]
    [InlineData(TransparentHugepage.Madvise, VmFlags.HugePage, 1, "madvise with MADV_HUGEPAGE")]
    [InlineData(TransparentHugepage.Always, VmFlags.NoHugePage, 0, "always with MADV_NOHUGEPAGE")]
    [InlineData(TransparentHugepage.Always, VmFlags.None, 1, "always")]
    public void Thp_vma_allowable_order_follows_the_sysfs_mode_and_the_madvise_hints(TransparentHugepage mode, VmFlags hint, int thps, string what)
    {
        var h = Harness(thp: mode);
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, H, RW | hint);
            await CpuAccess.Access(t, A + 5 * P, write: true);
        });
        h.Run();
        Assert.True(h.Machine.VmStat.thp_fault_alloc == thps, $"{what}: a write fault on an empty 2 MiB range gave {h.Machine.VmStat.thp_fault_alloc} THPs ({Pmd(mm, A)}); expected {thps}");
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_vma_suitable_order_needs_the_whole_aligned_2MiB_inside_the_vma_and_a_read_fault_maps_the_zero_page()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A + P, H, RW); // misaligned: no aligned 2 MiB inside
            await CpuAccess.Access(t, A + 2 * P, write: true);
            await Mmap.DoMmap(t, mm, TestMachines.AreaB, H, RW);
            await CpuAccess.Access(t, TestMachines.AreaB, write: false); // read: zero page at 4 KiB
            await CpuAccess.Access(t, TestMachines.AreaB + P, write: true); // the PMD is no longer none
        });
        h.Run();
        Assert.True(h.Machine.VmStat.thp_fault_alloc == 0, $"THPs allocated: {h.Machine.VmStat.thp_fault_alloc} ({Pmd(mm, A)}; {Pmd(mm, TestMachines.AreaB)})");
        Assert.Equal(2, h.Machine.Frames.Anon); // the two 4 KiB writes
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_fault_falls_back_to_a_4KiB_page_when_the_node_has_no_free_2MiB_block()
    {
        // 5 MiB per node: two THP blocks and 1 MiB of single frames on node 0. The third 2 MiB range falls back.
        var h = Harness(memoryPerNode: 5L << 20);
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 3 * H, RW);
            for (int k = 0; k < 3; k++) await CpuAccess.Access(t, A + k * H, write: true);
        });
        h.Run();
        h.CloseFrameAccounting();
        var v = h.Machine.VmStat;
        Assert.True(v.thp_fault_alloc == 2 && v.thp_fault_fallback == 1, $"thp_fault_alloc {v.thp_fault_alloc}, thp_fault_fallback {v.thp_fault_fallback}; third range: {Pmd(mm, A + 2 * H)}");
        Assert.False(mm.PageTable.Lookup(A + 2 * H)!.IsHuge);
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A + 2 * H)));
        Assert.Equal(2 * N + 1, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_fault_on_any_page_under_migration_waits_for_the_whole_2MiB_copy_and_is_woken()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(2, mm); var faulter = h.NewTask(1, mm);
        long migrated = 0, faulted = 0, faultStart = 0;
        h.Spawn(setup, 0, async t => { await Mmap.DoMmap(t, mm, A, H, RW); await CpuAccess.Access(t, A, write: true); });
        // move_pages of 16 pages in the middle: the whole THP moves.
        h.Spawn(migrator, 400_000, async t => { await MovePages.MigrateRange(t, mm, A + 100 * P, A + 116 * P, 1); migrated = t.Clock; });
        h.Spawn(faulter, 420_000, async t => { faultStart = t.Clock; await CpuAccess.Access(t, A + 300 * P, write: false); faulted = t.Clock; });
        h.Run();
        h.CloseFrameAccounting();
        var v = h.Machine.VmStat;
        long copy = h.Machine.Cost.PageBandwidthNs(2L << 20, h.Machine.Distance(0, 1));
        Assert.True(v.thp_migration_success == 1 && v.pgmigrate_success == N, $"thp_migration_success {v.thp_migration_success}, pgmigrate_success {v.pgmigrate_success}: a THP is one folio of 512 pages");
        Assert.Equal(1, h.Machine.MigrationWait.Count);
        Assert.True(h.Machine.MigrationWait.Max >= copy - 30_000, $"the fault on page 300 waited {h.Machine.MigrationWait.Max} ns; the 2 MiB copy takes {copy} ns");
        Assert.True(faulted >= migrated - 5_000, $"fault ended {faulted} ns, migration {migrated} ns");
        var page = mm.PageTable.Lookup(A)!;
        Assert.True(page.IsHuge && h.Machine.NodeOfFrame(page.HugeHead) == 1, $"after migration: {Pmd(mm, A)}");
        Assert.Equal(N, h.Machine.Frames.Anon);
        Assert.Equal(0, h.Machine.Folios.Count);
        Assert.Empty(h.Stalled);
        TestMachines.AssertClean(h);
    }

    [Theory]
    [InlineData("mmap-only", false)]
    [InlineData("vma-bailout", true)]
    [InlineData("merged", true)]
    [InlineData("ptl-drop", true)]
    [InlineData("v6.12", true)]
    [InlineData("vma-unlocked", true)]
    [InlineData("lock-dropped", true)]
    public void Pmd_migration_entry_wait_holds_the_fault_lock_under_every_policy(string policyName, bool underVmaLock)
    {
        // __handle_mm_fault: is_pmd_migration_entry → pmd_migration_entry_wait, return 0. Not do_swap_page: no VMA-lock
        // bail-out (6.4) and no lock drop (the June 2023 proposals, ptl-drop) on this path — so no S8 or S6 either.
        var policy = FaultPolicies.Parse(policyName);
        var h = Harness(policy);
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(2, mm); var faulter = h.NewTask(1, mm);
        h.Spawn(setup, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, H, RW);
            await CpuAccess.Access(t, A, write: true);
        });
        h.Spawn(migrator, 400_000, async t => await MovePages.MigrateRange(t, mm, A, A + P, 1));
        long successes = 0;
        h.Spawn(faulter, 420_000, async t =>
        {
            long before = t.Machine.VmStat.vma_lock_success;
            await CpuAccess.Access(t, A + 7 * P, write: true);
            successes = t.Machine.VmStat.vma_lock_success - before;
        });
        h.Run();
        var v = h.Machine.VmStat;
        Assert.True(v.vma_lock_retry == 0, $"{policyName}: a fault on a PMD migration entry was retried ({v.vma_lock_retry} vma_lock_retry)");
        Assert.Equal(1, h.Machine.MigrationWait.Count);
        Assert.True(successes == (underVmaLock ? 1 : 0), $"{policyName}: the fault that waited on the PMD migration entry completed on the VMA path {successes} time(s)");
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_partial_munmap_splits_the_pmd_counts_thp_split_pmd_and_frees_only_the_unmapped_pages()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, H, RW);
            await CpuAccess.Access(t, A, write: true);
            await Munmap.DoMunmap(t, mm, A + 256 * P, A + H);
            Assert.True(h.Machine.Frames.Anon == 256, $"after unmapping half of a THP: {h.Machine.Frames}, {Pmd(mm, A)}");
            Assert.False(mm.PageTable.Lookup(A)!.IsHuge);
            Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A + 255 * P)));
            Assert.Equal(PteKind.None, Pte.Kind(mm.PageTable.Read(A + 256 * P)));
            await Munmap.DoMunmap(t, mm, A, A + 256 * P);
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.Equal(1, h.Machine.VmStat.thp_split_pmd);
        Assert.Equal(0, h.Machine.Frames.Anon);
        Assert.True(h.Machine.Frames.Conserved, h.Machine.Frames.ToString());
        Assert.Equal(0, h.Machine.Folios.LargeCount);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_whole_munmap_frees_the_512_frames_as_one_block_without_a_split()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        long blocksBefore = 0, blocksMapped = 0, blocksAfter = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            blocksBefore = h.Machine.Nodes[0].FreeHugeBlocks;
            await Mmap.DoMmap(t, mm, A, H, RW);
            await CpuAccess.Access(t, A + 9 * P, write: true);
            blocksMapped = h.Machine.Nodes[0].FreeHugeBlocks;
            await Munmap.DoMunmap(t, mm, A, A + H);
            blocksAfter = h.Machine.Nodes[0].FreeHugeBlocks;
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.True(blocksMapped == blocksBefore - 1 && blocksAfter == blocksBefore, $"free 2 MiB blocks on node 0: {blocksBefore} before, {blocksMapped} with the THP mapped, {blocksAfter} after munmap");
        Assert.Equal(0, h.Machine.VmStat.thp_split_pmd);
        Assert.Equal(0, h.Machine.Frames.Anon);
        Assert.Equal(0, h.Machine.Folios.LargeCount);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_mprotect_of_part_splits_the_pmd_and_of_the_whole_keeps_it_huge()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 2 * H, RW);
            await CpuAccess.Access(t, A, write: true);
            await CpuAccess.Access(t, A + H, write: true);
            await Mprotect.DoMprotect(t, mm, A + H, A + 2 * H, VmFlags.Read);   // the whole second THP
            await Mprotect.DoMprotect(t, mm, A, A + 16 * P, VmFlags.Read);      // part of the first
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.True(h.Machine.VmStat.thp_split_pmd == 1, $"thp_split_pmd {h.Machine.VmStat.thp_split_pmd}: first {Pmd(mm, A)}, second {Pmd(mm, A + H)}");
        Assert.False(mm.PageTable.Lookup(A)!.IsHuge);
        Assert.False(Pte.IsWritable(mm.PageTable.Read(A + 15 * P)));
        Assert.True(Pte.IsWritable(mm.PageTable.Read(A + 16 * P)));
        var second = mm.PageTable.Lookup(A + H)!;
        Assert.True(second.IsHuge, Pmd(mm, A + H));
        Assert.False(Pte.IsWritable(second[0]) || Pte.IsWritable(second[N - 1]));
        Assert.Equal(2 * N, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Thp_numa_hint_fault_on_a_remote_thp_migrates_the_whole_thp()
    {
        var h = Harness();
        var mm = h.Machine.CreateMm();
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, H, RW);
            await CpuAccess.Access(t, A, write: true);
            await NumaScan.ChangeProtNuma(t, mm, A, A + H);
        });
        h.Spawn(h.NewTask(2, mm), 500_000, async t => await CpuAccess.Access(t, A + 77 * P, write: false)); // CPU 2 is on node 1
        h.Run();
        h.CloseFrameAccounting();
        var v = h.Machine.VmStat;
        Assert.True(v.numa_pte_updates == N && v.numa_hint_faults == 1 && v.numa_pages_migrated == N && v.thp_migration_success == 1,
            $"numa_pte_updates {v.numa_pte_updates}, numa_hint_faults {v.numa_hint_faults}, numa_pages_migrated {v.numa_pages_migrated}, thp_migration_success {v.thp_migration_success}; {Pmd(mm, A)}");
        var page = mm.PageTable.Lookup(A)!;
        Assert.True(page.IsHuge && h.Machine.NodeOfFrame(page.HugeHead) == 1 && Pte.Kind(page[0]) == PteKind.Present, Pmd(mm, A));
        TestMachines.AssertClean(h);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Thp_munmap_during_its_migration_frees_source_and_copy_and_wakes_the_waiter(bool partial)
    {
        // The migrator is held between unmapping (PMD migration entry) and copying; a fault waits on the folio; munmap
        // of the whole THP (or of half of it: __split_huge_pmd of a PMD migration entry) runs meanwhile.
        var h = Harness(FaultPolicy.Merged);
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(3, mm); var faulter = h.NewTask(1, mm); var writer = h.NewTask(2, mm);
        h.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 100_000;
        h.Spawn(setup, 0, async t => { await Mmap.DoMmap(t, mm, A, H, RW); await CpuAccess.Access(t, A, write: true); });
        h.Spawn(migrator, 400_000, async t => await MovePages.MigrateRange(t, mm, A, A + P, 1));
        h.Spawn(faulter, 420_000, async t => await CpuAccess.Access(t, A + 3 * P, write: true));
        h.Spawn(writer, 430_000, async t => await Munmap.DoMunmap(t, mm, partial ? A + 256 * P : A, A + H));
        h.Run();
        h.CloseFrameAccounting();
        Assert.True(h.Machine.Frames.Conserved, h.Machine.Frames.ToString());
        Assert.Equal(partial ? 256 : 0, h.Machine.Frames.Anon);
        Assert.Equal(partial ? 1 : 0, h.Machine.VmStat.thp_split_pmd);
        Assert.Equal(1, h.Machine.MigrationWait.Count);
        Assert.Empty(h.Stalled);
        Assert.Equal(0, h.Machine.Folios.LargeCount);
        Assert.Equal(0, h.Machine.Folios.Count);
        TestMachines.AssertClean(h);
    }
}
