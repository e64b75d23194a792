using DistEmu.Grains.Placement;

namespace DistEmu.Client.Tests;

/// <summary>The machine file's placement section: parsed, checked against the machine and the silos, written back.</summary>
public sealed class PlacementMapTests : InProcessCliTests
{
    private string Machine(string placement)
    {
        var file = Path.Combine(_tmp, "m.yaml");
        // 4 nodes of 1 CPU: enough nodes for ranges, small enough for a quick run.
        File.WriteAllText(file, "base: small\nnodes: 4\ncpus_per_node: 1\ndistance:\n  - [10, 20, 20, 20]\n  - [20, 10, 20, 20]\n  - [20, 20, 10, 20]\n  - [20, 20, 20, 10]\n" + placement);
        return file;
    }

    [Fact]
    public void Node_ranges_map_to_silos_and_unlisted_nodes_keep_the_even_spread()
    {
        var (machine, map) = MachineLoader.LoadFileWithPlacement(Machine("placement:\n  - nodes: 0-1\n    silo: 1\n  - nodes: 3\n    silo: 0\n"));
        Assert.Equal(4, machine.Nodes);
        var silos = Assert.IsType<PlacementMap>(map).SiloOfNode();
        Assert.Equal([1, 1, -1, 0], silos);
        // With 2 silos: nodes 0, 1 on silo 1 as mapped, node 2 by the even spread (2·2/4 = 1), node 3 on silo 0 as mapped.
        Assert.Equal([1, 1, 1, 0], Enumerable.Range(0, 4).Select(n => PlacementMap.SiloIndex(silos, n, 4, 2)).ToArray());
        // A silo lost mid-run: a mapped index past the silos left falls back to the even spread instead of failing.
        Assert.Equal(0, PlacementMap.SiloIndex(silos, 0, 4, 1));
    }

    [Theory]
    [InlineData("placement:\n  - nodes: 2-5\n    silo: 0\n", "m.yaml:10:5: placement[0].nodes: 2-5 is past the machine's last node (3)")]
    [InlineData("placement:\n  - nodes: 0-2\n    silo: 0\n  - nodes: 2-3\n    silo: 1\n", "m.yaml:12:5: placement[1].nodes: 2-3 overlaps placement[0] (0-2) at node 2")]
    [InlineData("placement:\n  - nodes: 3-1\n    silo: 0\n", "placement[0].nodes: 3-1 is not a range of nodes")]
    [InlineData("placement:\n  - nodes: a-b\n    silo: 0\n", "placement[0].nodes: 'a-b' is not a node or a range FIRST-LAST")]
    [InlineData("placement:\n  - nodes: 0\n", "placement[0]: missing silo")]
    [InlineData("placement:\n  - nodes: 0\n    silo: 0\n    host: x\n", "placement[0]: unknown key 'host'")]
    [InlineData("placement: 0-3\n", "placement must be a list")]
    public void A_bad_placement_exits_2_naming_file_line_and_field(string placement, string message)
    {
        var (code, _, stderr) = Cli("run", "--machine", Machine(placement), "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        Assert.Contains(message, Assert.Single(Lines(stderr)));
        Assert.False(Directory.Exists(Path.Combine(_tmp, "out")), "nothing written");
    }

    [Fact]
    public void A_placement_naming_a_second_silo_is_refused_on_the_one_embedded_silo()
    {
        var (code, stdout, stderr) = Cli("run", "--machine", Machine("placement:\n  - nodes: 0-1\n    silo: 0\n  - nodes: 2-3\n    silo: 1\n"),
            "--ops", "10", "--out", Path.Combine(_tmp, "out"));
        Assert.Equal(2, code);
        Assert.Contains("m.yaml:12:5: placement[1].silo: silo 1, but the cluster has 1 silo (indexes 0..0)", Assert.Single(Lines(stderr)));
        Assert.DoesNotContain("running", stdout);
        Assert.False(Directory.Exists(Path.Combine(_tmp, "out")), "nothing written");
    }

    [Fact]
    public void The_placement_is_written_to_config_yaml_and_loads_again()
    {
        var outDir = Path.Combine(_tmp, "out");
        var (code, _, stderr) = Cli("run", "--machine", Machine("placement:\n  - nodes: 0-3\n    silo: 0\n"), "--param", "size_mb=1", "--ops", "50", "--out", outDir);
        Assert.True(code == 0, stderr);
        var config = Path.Combine(outDir, "config.yaml");
        Assert.Contains("placement:\n  - nodes: 0-3\n    silo: 0\n", File.ReadAllText(config));
        var (_, again) = MachineLoader.LoadFileWithPlacement(config);
        Assert.Equal([0, 0, 0, 0], Assert.IsType<PlacementMap>(again).SiloOfNode());
    }
}
