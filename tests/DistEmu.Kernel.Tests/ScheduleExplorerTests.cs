using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// Schedule exploration as a library (what `distemu explore` runs): its report does not depend on how many schedules
/// run at once, a stop at the first finding keeps exactly the seeds up to it, and a finding's seed reproduces it.
/// </summary>
public class ScheduleExplorerTests
{
    private static SimRunOptions Template(FaultPolicy policy) => new()
    {
        // THP off: the findings these tests need are the June 2023 proposals' 4 KiB do_swap_page race.
        Machine = new MachineSpec { Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 256L << 20, Distance = MachineSpec.UniformDistance(2), Policy = policy, Thp = TransparentHugepage.Never },
        Workload = "migrate-munmap",
        OpsPerTask = 150,
    };

    [Fact]
    public void The_report_is_the_same_with_one_or_several_schedules_at_once()
    {
        var one = ScheduleExplorer.Explore(Template(FaultPolicy.LockDropped), firstSeed: 1, schedules: 40, jobs: 1);
        var two = ScheduleExplorer.Explore(Template(FaultPolicy.LockDropped), firstSeed: 1, schedules: 40, jobs: 3);

        Assert.Equal(40, one.Schedules);
        Assert.Contains(one.Findings, f => f.Invariant == "S6");
        Assert.Equal(one.Clean, two.Clean);
        Assert.Equal(one.Faults, two.Faults);
        Assert.Equal(one.Findings.Select(f => (f.Invariant, f.Site)), two.Findings.Select(f => (f.Invariant, f.Site)));
        foreach (var (a, b) in one.Findings.Zip(two.Findings))
        {
            Assert.Equal(a.Seeds, b.Seeds);
            Assert.Equal(a.First?.ToString(), b.First?.ToString());
        }
        Assert.Equal(one.Schedules - one.Clean, one.Findings.SelectMany(f => f.Seeds).Distinct().Count());
    }

    [Fact]
    public void A_finding_names_a_seed_that_reproduces_it_and_stop_at_first_keeps_the_seeds_up_to_it()
    {
        var all = ScheduleExplorer.Explore(Template(FaultPolicy.LockDropped), firstSeed: 5, schedules: 30, jobs: 2);
        var s6 = all.Findings.First(f => f.Invariant == "S6");
        long first = all.Findings.Min(f => f.FirstSeed);

        var again = SimRun.Run(Template(FaultPolicy.LockDropped) with { Seed = s6.FirstSeed, Exploration = Exploration.Default });
        var v = again.Machine.Sanitizer.Violations.First(x => x.Invariant == "S6" && x.Site == s6.Site);
        Assert.Equal(s6.First!.ToString(), v.ToString());
        Assert.Equal(s6.First.EmulatedNs, v.EmulatedNs);

        var stopped = ScheduleExplorer.Explore(Template(FaultPolicy.LockDropped), firstSeed: 5, schedules: 30, jobs: 2, stopAtFirst: true);
        Assert.Equal(first, stopped.StoppedAtSeed);
        Assert.Equal(first - 5 + 1, stopped.Schedules);
        Assert.All(stopped.Findings, f => Assert.Equal([first], f.Seeds));
    }

    [Fact]
    public void A_safe_policy_explores_clean()
    {
        var r = ScheduleExplorer.Explore(Template(FaultPolicy.Merged), firstSeed: 1, schedules: 25, jobs: 2);
        Assert.Equal(25, r.Schedules);
        Assert.Equal(25, r.Clean);
        Assert.Empty(r.Findings);
        Assert.True(r.Faults > 25 * 100, $"the schedules barely faulted ({r.Faults})");
        Assert.Null(r.StoppedAtSeed);
    }

    [Fact]
    public void A_cancelled_exploration_reports_the_seeds_it_finished_in_order()
    {
        using var cts = new CancellationTokenSource();
        var r = ScheduleExplorer.Explore(Template(FaultPolicy.Merged), firstSeed: 1, schedules: 200, jobs: 1, cancel: cts.Token,
            progress: done => { if (done == 7) cts.Cancel(); });
        Assert.Equal(7, r.Schedules);
        Assert.Equal(7, r.Clean);
    }

    [Fact]
    public void A_schedule_that_throws_ends_the_exploration_with_its_own_exception()
    {
        var bad = Template(FaultPolicy.Merged) with { Params = new Dictionary<string, string> { ["size_mb"] = "0" } };
        var e = Assert.Throws<KernelConfigException>(() => ScheduleExplorer.Explore(bad, firstSeed: 1, schedules: 1_000_000, jobs: 2));
        Assert.Contains("size_mb", e.Message);
    }
}
