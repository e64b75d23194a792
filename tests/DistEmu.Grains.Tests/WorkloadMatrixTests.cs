using DistEmu.Kernel.Machine;

namespace DistEmu.Grains.Tests;

/// <summary>Every workload under every policy runs to the end through grains, on one silo and on two.</summary>
public abstract class WorkloadMatrixTests<TCluster>(TCluster cluster) where TCluster : ClusterFixture
{
    public static TheoryData<string, string> Matrix()
    {
        var data = new TheoryData<string, string>();
        foreach (var w in Kernel.Workloads.Workloads.Names.Where(n => !Kernel.Workloads.Workloads.Create(n).Forks)) // fork is the sim engine's
            foreach (var p in FaultPolicies.All)
                data.Add(w, p.Name());
        return data;
    }

    [Theory]
    [MemberData(nameof(Matrix))]
    public async Task Workload_completes_with_conserved_frames_and_fault_accounting(string workload, string policyName)
    {
        var policy = FaultPolicies.Parse(policyName);
        var o = EngineRuns.Options(workload, policy, ops: 300);
        var r = await EngineRuns.Orleans(cluster.Grains, o);
        var m = r.Machine;
        Assert.Equal(8 * 300, r.Ops);
        Assert.True(m.Frames.Conserved, EngineRuns.Describe(r));
        Assert.True(m.VmStat.Faults > 0, EngineRuns.Describe(r));
        long counted = m.VmStat.vma_lock_success + m.VmStat.vma_lock_abort + m.VmStat.vma_lock_retry;
        if (policy.HasVmaPath())
            Assert.True(counted <= m.VmStat.Faults && counted >= m.VmStat.Faults - m.VmStat.Sigsegv, $"A1: {counted} of {m.VmStat.Faults} faults counted; {EngineRuns.Describe(r)}");
        else
            Assert.Equal(0, counted + m.VmStat.vma_lock_miss);
        Assert.DoesNotContain(m.Sanitizer.Violations, v => v.Invariant is "A1" or "L2" or "S12" or "DEADLOCK" or "L1");
        if (FaultPolicies.Safe.Contains(policy))
            Assert.True(m.Sanitizer.Total == 0, EngineRuns.Describe(r));
    }
}

[Collection("one silo")]
public sealed class OneSiloWorkloadMatrixTests(OneSilo cluster) : WorkloadMatrixTests<OneSilo>(cluster);

[Collection("two silos")]
public sealed class TwoSiloWorkloadMatrixTests(TwoSilos cluster) : WorkloadMatrixTests<TwoSilos>(cluster);

[CollectionDefinition("one silo")]
public sealed class OneSiloCollection : ICollectionFixture<OneSilo>;

[CollectionDefinition("two silos")]
public sealed class TwoSiloCollection : ICollectionFixture<TwoSilos>;
