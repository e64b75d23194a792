using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DistEmu.Client;
using DistEmu.Grains.Placement;

namespace DistEmu.Cluster.Tests;

/// <summary>Two silo processes on redis clustering; runs attached to them through the command line.</summary>
public sealed class TwoSilos : IDisposable
{
    public SiloProcesses Cluster { get; } = new(2);
    public void Dispose() => Cluster.Dispose();
}

internal static class Cli
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = DistEmu.Client.Cli.Run(args, TextWriter.Synchronized(o), TextWriter.Synchronized(e));
        return (code, o.ToString(), e.ToString());
    }

    public static int PortOf(string siloAddress) // "127.0.0.1:11111@12345"
    {
        var hostPort = siloAddress.Split('@')[0];
        return int.Parse(hostPort[(hostPort.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture);
    }
}

public sealed class AttachedRunTests(TwoSilos fixture) : IClassFixture<TwoSilos>, IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-cluster-").FullName;
    private SiloProcesses Cluster => fixture.Cluster;
    private string Connection => Cluster.Connection;

    public void Dispose() => Directory.Delete(_tmp, true);

    private (int Code, string Out, string Err) RunSmall(string outDir) =>
        Cli.Run("run", "--cluster", Connection, "--cluster-id", Cluster.ClusterId, "--preset", "small", "--workload", "page-fault1",
            "--param", "size_mb=4", "--ops", "2000", "--out", outDir);

    [Fact]
    public void A_run_on_the_cluster_counts_every_fault_and_the_grain_calls_of_both_silos()
    {
        var outDir = Path.Combine(_tmp, "run");
        var (code, stdout, stderr) = RunSmall(outDir);
        Assert.True(code == 0, stderr + "\n" + Cluster.Log());
        Assert.Contains("orleans engine, cluster " + Cluster.ClusterId, stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        var r = doc.RootElement;
        Assert.Equal("completed", r.GetProperty("status").GetString());
        Assert.Equal("orleans", r.GetProperty("engine").GetString());
        // page-fault1 per task: mmap, one write per page, munmap, repeat; every op counts toward --ops
        // (as in the client's tests: 1997 writes per task for 4 MiB and 2000 ops), 8 tasks on small.
        const int ops = 2000, sizeMb = 4;
        long pages = sizeMb * (1L << 20) / 4096, writesPerTask = 0, done = 0;
        while (done < ops)
        {
            done++;
            long w = Math.Min(pages, ops - done);
            writesPerTask += w;
            done += w;
            if (done < ops) done++;
        }
        Assert.Equal(8 * writesPerTask, r.GetProperty("vmstat").GetProperty("pgfault").GetInt64());
        Assert.Equal(8 * writesPerTask, r.GetProperty("faults").GetInt64());
        var calls = r.GetProperty("grain_calls");
        Assert.True(calls.GetProperty("total").GetInt64() >= r.GetProperty("faults").GetInt64(), "a fault costs at least one grain call");
        // Two emulated nodes on two silos: the shared mm and machine live with node 0, so node 1's CPUs call across.
        Assert.True(calls.GetProperty("cross_silo").GetInt64() > 0, "node 1's CPUs call the mm on node 0's silo");
    }

    [Fact]
    public async Task The_grains_of_each_emulated_node_live_on_the_silo_the_placement_assigns()
    {
        var (code, _, stderr) = RunSmall(Path.Combine(_tmp, "placed"));
        Assert.True(code == 0, stderr + "\n" + Cluster.Log());

        var silos = await DistEmu.Client.ClusterStatus.QueryAsync(Cluster.Client); // sorted by address, as the placement sorts
        Assert.Equal(2, silos.Count);
        Assert.All(silos, s => Assert.Equal("Active", s.Status));
        int placed = 0;
        for (int i = 0; i < silos.Count; i++)
        {
            foreach (var ((kind, node), count) in silos[i].Grains)
            {
                if (node < 0)
                {
                    // The machine, the mm, the wait graph: grains of no node stay with node 0, whichever silo placed them.
                    Assert.True(i == 0, $"{count} {kind} grain(s) of no node on silo {i} ({silos[i].Address}), not with node 0");
                    continue;
                }
                Assert.True(NumaPlacementDirector.SiloIndex(node, 2, silos.Count) == i, $"{count} {kind} grains of node{node} on silo {i} ({silos[i].Address})");
                placed += count;
            }
        }
        Assert.True(silos[0].Grains.Keys.Any(k => k is ("cpu", 0)), "node 0's CPUs on the first silo");
        Assert.True(silos[1].Grains.Keys.Any(k => k is ("cpu", 1)), "node 1's CPUs on the second silo");
        Assert.True(placed >= 8, "every CPU grain was found");

        // The same through the command line.
        var (statusCode, stdout, statusErr) = Cli.Run("cluster", "status", "--cluster", Connection, "--cluster-id", Cluster.ClusterId);
        Assert.True(statusCode == 0, statusErr);
        Assert.Contains("2 active of 2 silos", stdout);
        Assert.Contains("node1: cpu=4", stdout);
        foreach (var s in silos) Assert.Contains(s.Address, stdout);
    }
}

public sealed class SiloLossTests : IDisposable
{
    private readonly string _tmp = Directory.CreateTempSubdirectory("distemu-cluster-kill-").FullName;

    public void Dispose() => Directory.Delete(_tmp, true);

    [Fact]
    public async Task A_silo_killed_during_a_run_aborts_it_with_the_survivors_counters_and_exit_1()
    {
        using var cluster = new SiloProcesses(2);
        var outDir = Path.Combine(_tmp, "killed");
        var run = Task.Run(() => Cli.Run("run", "--cluster", "redis://" + cluster.Redis, "--cluster-id", cluster.ClusterId, "--preset", "small",
            "--workload", "page-fault1", "--param", "size_mb=4", "--ops", "100000000", "--out", outDir));

        // Wait until the run's CPU grains are active on both silos and a node-0 CPU has mapped its region (its VMA grain,
        // where its faults are counted, is active on the first silo), then kill the silo of node 1.
        var started = Stopwatch.StartNew(); // only keeps a run that never starts from hanging the suite
        List<SiloReport> silos;
        while (true)
        {
            if (run.IsCompleted) Assert.Fail("the run ended before the silo was killed: " + (await run).Err);
            Assert.True(started.Elapsed < TimeSpan.FromSeconds(60), "the run's grains did not appear on both silos:\n" + cluster.Log());
            silos = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client);
            if (silos.Count == 2 && silos.All(s => s.Grains.Keys.Any(k => k.Kind == "cpu")) && silos[0].Grains.Keys.Any(k => k.Kind == "vma" && k.Node == 0)) break;
            await Task.Delay(250); // the poll's cadence; the condition is the grains
        }
        // What the test relies on: node 1's silo holds only node 1's grains; the machine, the mm (whose VMAs count pgfault)
        // and the wait graph live with node 0, so their counters survive.
        silos = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client);
        Assert.Equal(2, silos.Count);
        Assert.True(silos[1].Grains.Keys.All(k => k.Node == 1), "the silo to kill holds grains of other nodes: " + DistEmu.Client.ClusterStatus.Format(cluster.Target, silos));
        Assert.True(silos[0].Grains.Keys.Any(k => k.Kind == "mm"), "the mm is not with node 0: " + DistEmu.Client.ClusterStatus.Format(cluster.Target, silos));
        cluster.Kill(silos[1].Address);

        // The run ends because the membership declares the silo dead (Orleans' probes), not because a call was slow. The
        // bound only keeps a hung run from hanging the suite: several times Orleans' death declaration on a busy host.
        bool ended = await Task.WhenAny(run, Task.Delay(TimeSpan.FromMinutes(3))) == run;
        Assert.True(ended, "the run did not end within 3 min of losing a silo:\n" + cluster.Log());
        var (code, _, stderr) = await run;
        Assert.True(code == 1, $"exit {code}: {stderr}");
        Assert.Contains("aborted", stderr);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "stats.json")));
        Assert.Equal("aborted", doc.RootElement.GetProperty("status").GetString());
        string reason = doc.RootElement.GetProperty("reason").GetString() ?? "";
        Assert.StartsWith($"silo {silos[1].Address} left the cluster during the run (membership: ", reason);
        // Partial counters: the surviving silo's grains (node 0's CPUs, the mm) still count; the lost ones are named.
        long faults = doc.RootElement.GetProperty("vmstat").GetProperty("pgfault").GetInt64();
        Assert.True(faults > 0, $"the survivors' counters are kept (pgfault {faults}); reason: {reason}");
        Assert.Contains("partial counters:", reason);
        Assert.Matches(@"cpu[4-7] \(", reason); // node 1's CPUs were on the killed silo
        // Every grain of node 1 is named in lost_grains, the node's free list included: one activated anew on the survivor
        // (after the silo was declared dead) counts as lost, never as a node with every frame free.
        var lost = doc.RootElement.GetProperty("lost_grains").EnumerateArray().Select(e => e.GetString() ?? "").ToList();
        foreach (var grain in new[] { "cpu4", "cpu5", "cpu6", "cpu7", "node1" })
            Assert.True(lost.Any(g => g.StartsWith(grain + " (", StringComparison.Ordinal)), $"{grain} is not in lost_grains: {string.Join("; ", lost)}");
        // The survivors keep their state: no grain of node 0 nor of no node is lost with a silo it did not live on (Orleans'
        // default directory would deactivate those whose directory entry the lost silo held).
        Assert.DoesNotContain(lost, g => g.StartsWith("mm0 (", StringComparison.Ordinal) || g.StartsWith("node0 (", StringComparison.Ordinal)
            || g.StartsWith("cpu0 (", StringComparison.Ordinal) || g.StartsWith("cpu1 (", StringComparison.Ordinal)
            || g.StartsWith("cpu2 (", StringComparison.Ordinal) || g.StartsWith("cpu3 (", StringComparison.Ordinal));
        Assert.DoesNotContain("machine grain lost its state", reason);
        Assert.DoesNotContain("no counters could be read", reason);
    }
}
