using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

/// <summary>
/// A run's progress is counted where its faults are made and summed node by node, on every machine size: the progress
/// line and the no-progress watchdog read it. (CPUs used to report to the machine every 1,024 ops only, so a run of
/// fewer ops per task showed 0 faults until it ended, and the watchdog aborted runs that were progressing.)
/// </summary>
[Collection("one silo")]
public sealed class ProgressTests(OneSilo cluster)
{
    [Fact]
    public async Task The_status_of_a_run_of_few_ops_per_task_counts_every_fault_once_every_task_is_done()
    {
        var o = EngineRuns.Options("page-fault1", FaultPolicy.Merged, ops: 300);
        RunStatus? last = null;
        var r = await OrleansRun.Run(cluster.Grains, o, progress: s => last = s, stallTimeout: TimeSpan.FromSeconds(30));
        Assert.True(r.Status == "completed", $"{r.Status}: {r.Reason}");
        Assert.NotNull(last);
        Assert.Equal(last.Tasks, last.Done);
        // Every op each task began, and every entry into the fault handler the CPUs counted (page-fault1 over 1 MiB: two
        // mmaps and a munmap, the rest writes to new pages).
        Assert.Equal(8 * 300, last.Ops);
        Assert.Equal(r.Machine.VmStat.Faults, last.Faults);
        Assert.Equal(8 * 297, last.Faults);
        Assert.Equal(r.EmulatedNs, last.MaxClock);
    }

    [Fact]
    public async Task Nodes_sum_their_cpus_reports_and_a_stall_names_the_least_advanced_tasks_first()
    {
        string run = $"run-{Guid.NewGuid():N}";
        var machine = cluster.Grains.GetGrain<IMachineGrain>(run);
        await machine.Configure(new RunConfig { RunId = run, MachineJson = MachineJson.Serialize(EngineRuns.Small(FaultPolicy.Merged)), Tasks = 8 });
        // The small machine: CPUs 0-3 on node 0, 4-7 on node 1.
        await cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, 0)).Progress(1, ops: 40, faults: 30, clock: 9_000, done: false);
        await cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, 0)).Progress(2, ops: 100, faults: 90, clock: 20_000, done: true);
        await cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, 1)).Progress(5, ops: 7, faults: 2, clock: 4_000, done: false);

        var status = await machine.Status();
        Assert.Equal((147L, 122L, 20_000L), (status.Ops, status.Faults, status.MaxClock));

        string stall = await machine.DescribeStall();
        // Nothing started here, so no task is done: all 8 are named as not done; the two that reported run, least advanced first.
        Assert.StartsWith("8 task(s) not done (cpu5: 7 ops, 2 faults, clock 4000 ns; cpu1: 40 ops, 30 faults, clock 9000 ns", stall);
        Assert.DoesNotContain("cpu2:", stall); // its task ended
    }
}
