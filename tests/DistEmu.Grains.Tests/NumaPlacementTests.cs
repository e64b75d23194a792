using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using Xunit.Abstractions;

namespace DistEmu.Grains.Tests;

/// <summary>What a page-fault1 run's grain calls cost in cross-silo traffic on a two-silo cluster.</summary>
internal static class CrossSilo
{
    public static async Task<(double Fraction, long Cross, long Calls)> PageFault1(ClusterFixture cluster)
    {
        long callsBefore = cluster.CallsPerSilo().Sum(), crossBefore = cluster.CrossSiloCallsPerSilo().Sum();
        var r = await EngineRuns.Orleans(cluster.Grains, EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 2000));
        Assert.Equal(0, r.Machine.Sanitizer.Total);
        long calls = cluster.CallsPerSilo().Sum() - callsBefore, cross = cluster.CrossSiloCallsPerSilo().Sum() - crossBefore;
        return ((double)cross / calls, cross, calls);
    }
}

/// <summary>NUMA placement (DESIGN principle 6): the grains of one emulated node live on that node's silo.</summary>
[Collection("two numa silos")]
public sealed class NumaPlacementTests(TwoNumaSilos cluster, ITestOutputHelper output)
{
    [Theory]
    [InlineData("run/node1/cpu5", 1)]
    [InlineData("run/node0", 0)]
    [InlineData("run/mm0/node3/vma17", 3)]
    [InlineData("run/mm0", -1)]
    [InlineData("run", -1)]
    [InlineData("node2/mm0", -1)]
    public void The_node_comes_from_the_key(string key, int node) => Assert.Equal(node, GrainKeys.NodeOf(key));

    [Theory]
    [InlineData(0, 2, 2, 0)]
    [InlineData(1, 2, 2, 1)]
    [InlineData(3, 4, 2, 1)]
    [InlineData(1, 4, 2, 0)]
    [InlineData(1, 2, 3, 1)]
    [InlineData(2, 2, 1, 0)]
    public void Node_k_of_n_goes_to_silo_k_s_over_n(int node, int nodes, int silos, int silo) =>
        Assert.Equal(silo, NumaPlacementDirector.SiloIndex(node, nodes, silos));

    [Fact]
    public async Task Every_grain_of_node_k_lives_on_its_silo()
    {
        await EngineRuns.Orleans(cluster.Grains, EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 600));
        var silos = cluster.SortedSilos();
        var management = cluster.Grains.GetGrain<IManagementGrain>(0);
        var activations = await management.GetDetailedGrainStatistics();
        int cpus = 0, nodes = 0, vmas = 0;
        foreach (var a in activations)
        {
            string key = a.GrainId.Key.ToString() ?? "";
            if (!key.StartsWith("run-", StringComparison.Ordinal)) continue;
            int node = GrainKeys.NodeOf(key);
            // Grains of no node (machine, mm, time keeper) go with node 0.
            string expected = silos[NumaPlacementDirector.SiloIndex(Math.Max(node, 0), EngineRuns.Small(FaultPolicy.Merged).Nodes, silos.Length)];
            Assert.True(expected == a.SiloAddress.ToParsableString(), $"{key} is on {a.SiloAddress}, expected {expected}");
            string? where = null;
            if (key.Contains("/cpu", StringComparison.Ordinal)) { where = await cluster.Grains.GetGrain<ICpuGrain>(key).Where(); cpus++; }
            else if (key.Contains("/vma", StringComparison.Ordinal)) { where = await cluster.Grains.GetGrain<IVmaGrain>(key).Where(); vmas++; }
            else if (key.EndsWith("/migrator", StringComparison.Ordinal)) { }
            else if (node >= 0) { where = await cluster.Grains.GetGrain<INumaNodeGrain>(key).Where(); nodes++; }
            if (where != null) Assert.True(expected == where, $"{key} says it is on {where}, expected {expected}");
        }
        Assert.True(cpus >= 8, $"{cpus} CPU grains");
        Assert.True(nodes >= 2, $"{nodes} node grains");
        Assert.True(vmas >= 8, $"{vmas} VMA grains");
        output.WriteLine($"checked {cpus} CPU, {nodes} node and {vmas} VMA grains on silos {string.Join(", ", silos)}");
    }

    [Fact]
    public async Task Page_migrators_live_on_their_node_s_silo()
    {
        await EngineRuns.Orleans(cluster.Grains, EngineRuns.Options("migrate-munmap", FaultPolicy.Merged, ops: 300));
        var silos = cluster.SortedSilos();
        var activations = await cluster.Grains.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        int migrators = 0;
        foreach (var a in activations)
        {
            string key = a.GrainId.Key.ToString() ?? "";
            if (!key.StartsWith("run-", StringComparison.Ordinal) || !key.EndsWith("/migrator", StringComparison.Ordinal)) continue;
            migrators++;
            string expected = silos[NumaPlacementDirector.SiloIndex(GrainKeys.NodeOf(key), EngineRuns.Small(FaultPolicy.Merged).Nodes, silos.Length)];
            Assert.True(expected == a.SiloAddress.ToParsableString(), $"{key} is on {a.SiloAddress}, expected {expected}");
        }
        Assert.True(migrators >= 1, "the migrate workload queued pages at a node's migrator");
    }

    [Fact]
    public async Task A_numa_local_workload_stays_on_its_silo()
    {
        var (fraction, cross, calls) = await CrossSilo.PageFault1(cluster);
        output.WriteLine($"NUMA placement, page-fault1: {cross} of {calls} grain calls cross silos ({fraction:P2})");
        Assert.True(fraction < 0.05, $"{cross} of {calls} calls crossed silos ({fraction:P2})");
    }
}

/// <summary>The same workload under random placement: about half of all calls cross silos.</summary>
[Collection("two silos")]
public sealed class RandomPlacementCrossSiloTests(TwoSilos cluster, ITestOutputHelper output)
{
    [Fact]
    public async Task A_numa_local_workload_crosses_silos_under_random_placement()
    {
        var (fraction, cross, calls) = await CrossSilo.PageFault1(cluster);
        output.WriteLine($"random placement, page-fault1: {cross} of {calls} grain calls cross silos ({fraction:P2})");
        Assert.True(fraction > 0.30, $"{cross} of {calls} calls crossed silos ({fraction:P2})");
    }
}

[CollectionDefinition("two numa silos")]
public sealed class TwoNumaSiloCollection : ICollectionFixture<TwoNumaSilos>;
