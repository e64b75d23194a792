using DistEmu.Kernel.Cpu;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Memory;
using DistEmu.Kernel.Migration;
using DistEmu.Kernel.Mm;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>PROTOCOL.md §4: migrate_pages, migration_entry_wait and NUMA balancing.</summary>
public class MigrationRuleTests
{
    private const long P = TestMachines.Page;
    private const VmFlags RW = VmFlags.Read | VmFlags.Write;
    private static long A => TestMachines.AreaA;

    [Fact]
    public void MigratePages_moves_the_page_to_the_destination_node_and_leaves_no_folio_state()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        int moved = 0;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            for (int i = 0; i < 4; i++) await CpuAccess.Access(t, A + i * P, write: true);
            moved = await MovePages.MigrateRange(t, mm, A, A + 4 * P, node: 1);
        });
        h.Run();
        h.CloseFrameAccounting();
        Assert.Equal(4, moved);
        Assert.Equal(4, h.Machine.VmStat.pgmigrate_success);
        for (int i = 0; i < 4; i++)
        {
            long pte = mm.PageTable.Read(A + i * P);
            Assert.Equal(PteKind.Present, Pte.Kind(pte));
            Assert.Equal(1, h.Machine.NodeOfFrame(Pte.Frame(pte)));
        }
        Assert.Equal(0, h.Machine.Folios.Count);
        Assert.Equal(4, h.Machine.Frames.Anon);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void A_fault_on_a_migration_entry_sleeps_until_the_folio_is_unlocked_and_is_woken()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(2, mm); var faulter = h.NewTask(1, mm);
        h.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 40_000;
        long migrated = 0, faulted = 0;
        h.Spawn(setup, 0, async t => { await Mmap.DoMmap(t, mm, A, 8 * P, RW); await CpuAccess.Access(t, A, write: true); });
        h.Spawn(migrator, 10_000, async t => { await MovePages.MigrateRange(t, mm, A, A + P, 1); migrated = t.Clock; });
        h.Spawn(faulter, 15_000, async t => { await CpuAccess.Access(t, A, write: false); faulted = t.Clock; });
        h.Run();
        Assert.Equal(1, h.Machine.MigrationWait.Count);
        Assert.True(faulted >= migrated, $"fault ended {faulted}, migration {migrated}");
        Assert.Empty(h.Stalled);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void MigratePagesBatch_unmaps_the_whole_batch_and_flushes_once_so_a_fault_on_the_kth_page_waits_for_k_copies()
    {
        // migrate_pages_batch (6.3+): every folio of the batch is locked and unmapped, one try_to_unmap_flush, then they
        // are moved one by one. The last page's migration entry is installed before the first copy and removed after the
        // eighth, so a fault on it soon after the migration starts waits for all eight copies (each held up 20 µs here).
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(2, mm); var faulter = h.NewTask(1, mm);
        h.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 20_000;
        long flushesBefore = 0, faultEnded = 0, migrationEnded = 0;
        h.Spawn(setup, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            for (int i = 0; i < 8; i++) await CpuAccess.Access(t, A + i * P, write: true);
        });
        h.Spawn(migrator, 20_000, async t =>
        {
            flushesBefore = t.Machine.VmStat.nr_tlb_remote_flush;
            await MovePages.MigrateRange(t, mm, A, A + 8 * P, 1);
            migrationEnded = t.Clock;
        });
        h.Spawn(faulter, 30_000, async t => { await CpuAccess.Access(t, A + 7 * P, write: false); faultEnded = t.Clock; });
        h.Run();
        Assert.Equal(8, h.Machine.VmStat.pgmigrate_success);
        Assert.Equal(1, h.Machine.VmStat.nr_tlb_remote_flush - flushesBefore); // one flush for the batch, not one per page
        Assert.Equal(1, h.Machine.MigrationWait.Count);
        Assert.True(h.Machine.MigrationWait.Max >= 8 * 20_000 - 10_000, $"the fault on page 8 waited {h.Machine.MigrationWait.Max} ns");
        Assert.True(faultEnded >= migrationEnded - 5_000, $"fault ended {faultEnded}, migration {migrationEnded}");
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void Async_migration_gives_up_when_the_folio_is_locked()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        bool ok = true;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            var vma = await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            await CpuAccess.Access(t, A, write: true);
            long frame = Pte.Frame(mm.PageTable.Read(A));
            Assert.True(t.Machine.Folios.TryLock(t, frame));
            ok = await MigratePages.MigrateFolio(t, vma, A, frame, 1, MigrateMode.Async);
            t.Machine.Folios.Unlock(t, frame);
        });
        h.Run();
        Assert.False(ok);
        Assert.Equal(1, h.Machine.VmStat.pgmigrate_fail);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void A_hinting_fault_on_a_remote_page_migrates_it_to_the_faulting_cpus_node()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var owner = h.NewTask(0, mm);   // node 0
        var remote = h.NewTask(2, mm);  // node 1
        h.Spawn(owner, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            await CpuAccess.Access(t, A, write: true);
            await CpuAccess.Access(t, A + P, write: true);
            Assert.Equal(2, await NumaScan.ChangeProtNuma(t, mm, A, A + 8 * P));
            Assert.Equal(PteKind.ProtNone, Pte.Kind(mm.PageTable.Read(A)));
        });
        h.Spawn(remote, 50_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Spawn(owner, 60_000, async t => await CpuAccess.Access(t, A + P, write: false));
        h.Run();
        Assert.Equal(2, h.Machine.VmStat.numa_hint_faults);
        Assert.Equal(1, h.Machine.VmStat.numa_pages_migrated);
        Assert.Equal(1, h.Machine.NodeOfFrame(Pte.Frame(mm.PageTable.Read(A))));
        Assert.Equal(0, h.Machine.NodeOfFrame(Pte.Frame(mm.PageTable.Read(A + P))));
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A + P)));
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void DoNumaPage_counts_numa_hint_faults_only_after_the_pte_same_recheck()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var owner = h.NewTask(0, mm); var other = h.NewTask(1, mm); var scanner = h.NewTask(2, mm);
        const long T0 = 1_000_000;
        long hintsBefore = -1;
        h.Spawn(owner, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 512 * P, RW);
            for (int i = 0; i < 512; i++) await CpuAccess.Access(t, A + i * P, write: true);
            Assert.Equal(1, await NumaScan.ChangeProtNuma(t, mm, A, A + P));
            hintsBefore = t.Machine.VmStat.numa_hint_faults;
        });
        // The scanner holds the page-table page's PTL for the other 511 entries while both CPUs of node 0 read page 0's
        // protnone entry and queue on that PTL. The first makes it present; the second then fails pte_same.
        h.Spawn(scanner, T0, async t => await NumaScan.ChangeProtNuma(t, mm, A + P, A + 512 * P));
        h.Spawn(owner, T0 + 100, async t => await CpuAccess.Access(t, A, write: false));
        h.Spawn(other, T0 + 200, async t => await CpuAccess.Access(t, A, write: false));
        h.Run();
        Assert.Equal(0, hintsBefore);
        Assert.Equal(1, h.Machine.VmStat.numa_hint_faults);
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A)));
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void ShouldNumaMigrateMemory_migrates_a_page_on_the_second_consecutive_hint_fault_from_the_same_node()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var owner = h.NewTask(0, mm); var local = h.NewTask(1, mm);
        var remote1 = h.NewTask(2, mm); var remote2 = h.NewTask(3, mm); // node 1
        int nodeAfterFirstRemote = -1;
        long migratedAfterFirstRemote = -1;
        h.Spawn(owner, 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 8 * P, RW);
            await CpuAccess.Access(t, A, write: true);
            await NumaScan.ChangeProtNuma(t, mm, A, A + P);
        });
        // A local hint fault records node 0 as the last accessor…
        h.Spawn(local, 50_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Spawn(owner, 60_000, async t => await NumaScan.ChangeProtNuma(t, mm, A, A + P));
        // …so node 1's first hint fault does not move the page (the last one came from node 0); it records node 1…
        h.Spawn(remote1, 70_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Spawn(owner, 80_000, async t =>
        {
            nodeAfterFirstRemote = t.Machine.NodeOfFrame(Pte.Frame(mm.PageTable.Read(A)));
            migratedAfterFirstRemote = t.Machine.VmStat.numa_pages_migrated;
            await NumaScan.ChangeProtNuma(t, mm, A, A + P);
        });
        // …and node 1's second consecutive hint fault does.
        h.Spawn(remote2, 100_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Run();
        Assert.Equal(0, nodeAfterFirstRemote);
        Assert.Equal(0, migratedAfterFirstRemote);
        Assert.Equal(3, h.Machine.VmStat.numa_hint_faults);
        Assert.Equal(1, h.Machine.VmStat.numa_pages_migrated);
        Assert.Equal(1, h.Machine.NodeOfFrame(Pte.Frame(mm.PageTable.Read(A))));
        Assert.Equal(0, h.Machine.VmStat.pgmigrate_fail);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void TaskNumaWork_scans_writable_file_vmas_and_skips_read_only_ones()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var data = h.Machine.CreateFile("/data/shared", diskBacked: false);
        var lib = h.Machine.CreateFile("/lib/libc.so", diskBacked: false);
        long B = TestMachines.AreaB;
        long updated = -1;
        h.Spawn(h.NewTask(0, mm), 0, async t =>
        {
            await Mmap.DoMmap(t, mm, A, 4 * P, RW | VmFlags.Shared, data);
            await Mmap.DoMmap(t, mm, B, 4 * P, VmFlags.Read | VmFlags.Exec, lib);
            for (int i = 0; i < 4; i++)
            {
                await CpuAccess.Access(t, A + i * P, write: true);
                await CpuAccess.Access(t, B + i * P, write: false);
            }
            updated = await NumaScan.ChangeProtNuma(t, mm, A, B + 4 * P);
        });
        // A hint fault on a file page is counted and made accessible again (file folios are not migrated here).
        h.Spawn(h.NewTask(2, mm), 50_000, async t => await CpuAccess.Access(t, A, write: false));
        h.Run();
        Assert.Equal(4, updated);
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(B)));
        Assert.Equal(PteKind.Present, Pte.Kind(mm.PageTable.Read(A)));
        Assert.Equal(1, h.Machine.VmStat.numa_hint_faults);
        Assert.Equal(0, h.Machine.VmStat.pgmigrate_fail);
        TestMachines.AssertClean(h);
    }

    [Fact]
    public void The_numa_scanner_skips_a_busy_mm()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        long updated = -1;
        var w = h.NewTask(0, mm); var s = h.NewTask(1, mm);
        h.Spawn(w, 0, async t => { await Locking.MmapLock.MmapWriteLock(t, mm); await t.Delay(20_000); Locking.MmapLock.MmapWriteUnlock(t, mm); });
        h.Spawn(s, 5_000, async t => updated = await NumaScan.ChangeProtNuma(t, mm, A, A + P));
        h.Run();
        Assert.Equal(0, updated);
        Assert.Equal(0, h.Machine.LockStats[Locking.LockClass.MmapLock, Locking.LockMode.Read].Contentions);
    }

    [Fact]
    public void Munmap_of_a_page_under_migration_drops_the_copy_and_frees_both_frames()
    {
        var h = new SimHarness(TestMachines.Spec(FaultPolicy.Merged));
        var mm = h.Machine.CreateMm();
        var setup = h.NewTask(0, mm); var migrator = h.NewTask(2, mm);
        h.Engine.ScriptedDelays[(migrator.Id, PreemptSite.MigrateBeforeCopy)] = 40_000;
        h.Spawn(setup, 0, async t => { await Mmap.DoMmap(t, mm, A, 8 * P, RW); await CpuAccess.Access(t, A, write: true); });
        h.Spawn(migrator, 10_000, async t => await MovePages.MigrateRange(t, mm, A, A + P, 1));
        h.Spawn(setup, 20_000, async t => await Munmap.DoMunmap(t, mm, A, A + 8 * P));
        h.Run();
        h.CloseFrameAccounting();
        Assert.Equal(0, h.Machine.Frames.Anon);
        Assert.Equal(0, h.Machine.Frames.InFlight);
        Assert.Equal(0, h.Machine.Folios.Count);
        TestMachines.AssertClean(h);
    }
}
