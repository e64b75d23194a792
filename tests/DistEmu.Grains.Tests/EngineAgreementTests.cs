using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Grains.Tests;

/// <summary>The orleans and sim engines agree on what does not depend on timing.</summary>
[Collection("two silos")]
public sealed class EngineAgreementTests(TwoSilos cluster)
{
    [Theory]
    [InlineData("page-fault1")]
    [InlineData("page-fault3")]
    public async Task Pgfault_equals_the_pages_touched_under_both_engines(string workload)
    {
        var o = EngineRuns.Options(workload, FaultPolicy.Merged, ops: 1000);
        var orleans = await EngineRuns.Orleans(cluster.Grains, o);
        var sim = SimRun.Run(o);
        // Per task: mmap, 256 writes, munmap, repeated: 1000 ops = 3 rounds (774 ops) + mmap + 225 writes.
        long touched = 8 * (3 * 256 + 225);
        // pgfault counts as mm_account_fault does: a handle_mm_fault that returned RETRY is not counted, so the shared
        // file writes of page-fault3, which 6.6 retries from the VMA lock to mmap_lock, count once each.
        Assert.Equal(touched, sim.Machine.VmStat.pgfault);
        Assert.True(touched == orleans.Machine.VmStat.pgfault, $"pgfault {orleans.Machine.VmStat.pgfault}, expected {touched}; " +
            $"success {orleans.Machine.VmStat.vma_lock_success} abort {orleans.Machine.VmStat.vma_lock_abort} retry {orleans.Machine.VmStat.vma_lock_retry} miss {orleans.Machine.VmStat.vma_lock_miss} ops {orleans.Ops}; " + EngineRuns.Describe(orleans));
        Assert.Equal(sim.Machine.VmStat.Faults, orleans.Machine.VmStat.Faults);
        Assert.True(orleans.Machine.Frames.Conserved, EngineRuns.Describe(orleans));
        Assert.Equal(0, orleans.Machine.Sanitizer.Total);
        Assert.Equal(sim.Ops, orleans.Ops);
    }

    [Fact]
    public async Task Thp_faults_and_migrations_agree_under_both_engines_and_their_counters_merge_across_grains()
    {
        // page-fault1 with thp=on: one fault per 2 MiB (do_huge_pmd_anonymous_page) in the VMA grains, 2 MiB blocks from
        // the node grains; migrate-munmap with THP: whole-THP migrations and zaps through the VMA and node grains.
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 1000) with
        {
            Machine = EngineRuns.Small(FaultPolicy.Merged) with { Thp = TransparentHugepage.Always },
            Params = new Dictionary<string, string> { ["size_mb"] = "4", ["thp"] = "on" },
        };
        var orleans = await EngineRuns.Orleans(cluster.Grains, o);
        var sim = SimRun.Run(o);
        Assert.True(sim.Machine.VmStat.thp_fault_alloc == sim.Machine.VmStat.pgfault && sim.Machine.VmStat.thp_fault_alloc > 0, EngineRuns.Describe(sim));
        Assert.True(orleans.Machine.VmStat.thp_fault_alloc == sim.Machine.VmStat.thp_fault_alloc,
            $"thp_fault_alloc {orleans.Machine.VmStat.thp_fault_alloc} under orleans, {sim.Machine.VmStat.thp_fault_alloc} under sim; " + EngineRuns.Describe(orleans));
        Assert.Equal(sim.Machine.VmStat.pgfault, orleans.Machine.VmStat.pgfault);
        Assert.True(orleans.Machine.Frames.Conserved, EngineRuns.Describe(orleans));
        Assert.Equal(0, orleans.Machine.Sanitizer.Total);

        var mm = EngineRuns.Options("migrate-munmap", FaultPolicy.Merged, ops: 1500) with { Machine = EngineRuns.Small(FaultPolicy.Merged) with { Thp = TransparentHugepage.Always } };
        var r = await EngineRuns.Orleans(cluster.Grains, mm);
        var v = r.Machine.VmStat;
        Assert.True(v.thp_fault_alloc > 0 && v.thp_migration_success > 0 && v.pgmigrate_success >= 512 * v.thp_migration_success,
            $"thp_fault_alloc {v.thp_fault_alloc}, thp_migration_success {v.thp_migration_success}, pgmigrate_success {v.pgmigrate_success}; " + EngineRuns.Describe(r));
        Assert.True(r.Machine.Frames.Conserved, EngineRuns.Describe(r));
        Assert.Equal(0, r.Machine.Sanitizer.Total);
    }

    [Fact]
    public async Task Thp_split_by_a_vma_split_agrees_under_both_engines()
    {
        // Two THPs; mprotect of 16 pages splits the first VMA inside a THP (vma_adjust_trans_huge in the VMA grain's
        // SplitOff), munmap of half of the second splits it in zap_pmd_range, munmap of the rest frees every frame.
        const long Page = 4096, A = 0x7f00_0000_0000, H = 512 * Page;
        var o = new SimRunOptions
        {
            Machine = EngineRuns.Small(FaultPolicy.Merged) with { Thp = TransparentHugepage.Always },
            Workload = "migrate-munmap",
            Tasks = 1,
            OpsPerTask = 100,
            Script = new Dictionary<int, IReadOnlyList<Kernel.Workloads.Op>>
            {
                [0] =
                [
                    Kernel.Workloads.Op.MapAnon(A, 2 * H), Kernel.Workloads.Op.Write(A), Kernel.Workloads.Op.Write(A + H),
                    Kernel.Workloads.Op.Protect(A, 16 * Page, Kernel.Mm.VmFlags.Read), Kernel.Workloads.Op.Write(A + 16 * Page),
                    Kernel.Workloads.Op.Unmap(A + H + 256 * Page, 256 * Page), Kernel.Workloads.Op.Write(A + H + 8 * Page),
                    Kernel.Workloads.Op.Unmap(A, 2 * H),
                ],
            },
        };
        var sim = SimRun.Run(o);
        var orleans = await EngineRuns.Orleans(cluster.Grains, o);
        foreach (var r in new[] { sim, orleans })
        {
            var v = r.Machine.VmStat;
            Assert.True(v.thp_fault_alloc == 2 && v.thp_split_pmd >= 2 && v.Faults == 2, $"{r.Engine}: thp_fault_alloc {v.thp_fault_alloc}, thp_split_pmd {v.thp_split_pmd}, faults {v.Faults}; " + EngineRuns.Describe(r));
            Assert.True(r.Machine.Frames.Conserved && r.Machine.Frames.Anon == 0, EngineRuns.Describe(r));
            Assert.Equal(0, r.Machine.Sanitizer.Total);
        }
    }

    [Fact]
    public async Task A_fast_path_fault_costs_one_grain_call()
    {
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 2000);
        long before = cluster.CallsPerSilo().Sum();
        var r = await EngineRuns.Orleans(cluster.Grains, o);
        long calls = cluster.CallsPerSilo().Sum() - before;
        double perFault = (double)calls / r.Machine.VmStat.Faults;
        // One call per fault, plus per mapping: syscalls, tree snapshots, frame refills, shootdowns, and the run's own bookkeeping.
        Assert.InRange(perFault, 1.0, 1.2);
    }

    [Fact]
    public async Task Both_silos_host_grains_of_a_run()
    {
        var before = cluster.CallsPerSilo();
        await EngineRuns.Orleans(cluster.Grains, EngineRuns.Options("mmap-churn", FaultPolicy.Merged, ops: 500));
        var after = cluster.CallsPerSilo();
        Assert.All(after.Zip(before), p => Assert.True(p.First > p.Second, "every silo served calls"));
    }
}
