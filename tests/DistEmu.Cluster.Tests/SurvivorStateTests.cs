using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;

namespace DistEmu.Cluster.Tests;

/// <summary>
/// A lost silo takes only its own grains. Orleans' default grain directory, once a silo is declared dead, deactivates
/// every activation on the survivors whose directory entry that silo held — about half of them with two silos — so a
/// run's machine or mm on a surviving silo could lose its state to a silo it never lived on.
/// </summary>
public sealed class SurvivorStateTests
{
    [Fact]
    public async Task Grains_on_the_surviving_silo_keep_their_state_once_the_other_is_declared_dead()
    {
        using var cluster = new SiloProcesses(2);
        // Twenty runs' machine grains: grains of no node, all placed with node 0 on the first silo.
        var runs = Enumerable.Range(0, 20).Select(_ => $"run-{Guid.NewGuid():N}").ToList();
        string machine = MachineJson.Serialize(new MachineSpec { Nodes = 2, CpusPerNode = 2, MemoryPerNodeBytes = 64L << 20, Distance = MachineSpec.UniformDistance(2) });
        foreach (var run in runs)
            await cluster.Client.GetGrain<IMachineGrain>(run).Configure(new RunConfig { RunId = run, MachineJson = machine, Tasks = 3 });
        var silos = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client);
        Assert.Equal(20, silos[0].Grains.GetValueOrDefault(("machine", -1)));

        cluster.Kill(silos[1].Address);
        var waited = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                // The management grain may itself have lived on the killed silo: asked again until it answers.
                var now = await DistEmu.Client.ClusterStatus.QueryAsync(cluster.Client);
                if (now.Single(s => s.Address == silos[1].Address).Status == "Dead") break;
            }
            catch (Exception e) when (e is TimeoutException or OrleansException)
            {
            }
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(90), "the killed silo was never declared dead:\n" + cluster.Log());
            await Task.Delay(500);
        }
        await Task.Delay(2000); // let the survivor act on the news

        foreach (var run in runs)
        {
            var config = await cluster.Client.GetGrain<IMachineGrain>(run).GetConfig()
                .ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : null, TaskScheduler.Default);
            Assert.True(config is { Tasks: 3 }, $"machine grain of {run} lost its state with a silo it did not live on");
        }
    }
}
