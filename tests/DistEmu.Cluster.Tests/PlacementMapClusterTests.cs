namespace DistEmu.Cluster.Tests;

/// <summary>
/// A placement map in the machine file, on two silo processes of a cluster of their own (so no other test's grains
/// are counted): the map reverses the even spread, so grains on the mapped silo can only be there by the map.
/// </summary>
public sealed class PlacementMapClusterTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-cluster-map-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    private string Machine(string placement)
    {
        var file = Path.Combine(_tmp, $"m{Guid.NewGuid():N}.yaml");
        File.WriteAllText(file, "base: small\nname: mapped\n" + placement);
        return file;
    }

    [Fact]
    public async Task The_grains_of_node_k_live_on_the_silo_the_placement_map_assigns()
    {
        using var cluster = new SiloProcesses(2);
        var machine = Machine("placement:\n  - nodes: 0\n    silo: 1\n  - nodes: 1\n    silo: 0\n");
        var (code, _, stderr) = Cli.Run("run", "--cluster", cluster.Connection, "--cluster-id", cluster.ClusterId, "--machine", machine,
            "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "500", "--out", Path.Combine(_tmp, "run"));
        Assert.True(code == 0, stderr + "\n" + cluster.Log());

        var silos = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client); // sorted by address, as the placement sorts
        Assert.Equal(2, silos.Count);
        var mapped = new Dictionary<int, int> { [0] = 1, [1] = 0 };
        int placed = 0;
        for (int i = 0; i < silos.Count; i++)
        {
            foreach (var ((kind, node), count) in silos[i].Grains)
            {
                if (node < 0) continue; // machine, mm: grains of no node stay on the first silo
                Assert.True(mapped[node] == i, $"{count} {kind} grains of node{node} on silo {i} ({silos[i].Address}); the map says silo {mapped[node]}");
                placed += count;
            }
        }
        Assert.True(silos[1].Grains.Keys.Any(k => k is ("cpu", 0)), "node 0's CPUs on the second silo, as mapped");
        Assert.True(silos[0].Grains.Keys.Any(k => k is ("cpu", 1)), "node 1's CPUs on the first silo, as mapped");
        Assert.True(placed >= 8, $"every CPU grain was found ({placed} grains of a node)");

        // A map naming a silo the cluster does not have: exit 2 naming the entry, nothing run or written.
        var bad = Machine("placement:\n  - nodes: 0-1\n    silo: 2\n");
        var outDir = Path.Combine(_tmp, "bad");
        var (badCode, _, badErr) = Cli.Run("run", "--cluster", cluster.Connection, "--cluster-id", cluster.ClusterId, "--machine", bad, "--ops", "10", "--out", outDir);
        Assert.True(badCode == 2, $"exit {badCode}: {badErr}");
        Assert.Contains(":4:5: placement[0].silo: silo 2, but the cluster has 2 silos (indexes 0..1)", badErr);
        Assert.False(Directory.Exists(outDir), "nothing written");
    }
}
