using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sanitizer;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// fork as a workload op (fork-fault: one thread forks, each child exiting at once, while the others fault), and
/// the §8 bug switches by name: the safe policies explore clean with every copied frame given back, and with the 6.4
/// fork bug switched in the sanitizer reports S4 in dup_mmap.
/// </summary>
public class ForkWorkloadTests
{
    private static SimRunOptions Template(FaultPolicy policy, params string[] bugs) => new()
    {
        Machine = TestMachines.Spec(policy, 2, 4),
        Workload = "fork-fault",
        OpsPerTask = 150,
        Bugs = bugs,
    };

    public static TheoryData<string> SafePolicies => new(FaultPolicies.Safe.Select(p => p.Name()));

    [Theory]
    [MemberData(nameof(SafePolicies))]
    public void Fork_among_faults_explores_clean_and_every_copied_frame_comes_back(string policyName)
    {
        var r = ScheduleExplorer.Explore(Template(FaultPolicies.Parse(policyName)), firstSeed: 1, schedules: 40, jobs: 2);
        Assert.True(r.Findings.Count == 0, string.Join("\n", r.Findings.Select(f => $"{f.Invariant} seed {f.FirstSeed}: {(object?)f.First ?? f.Detail}")));
        Assert.Equal(40, r.Clean);
    }

    [Fact]
    public void The_fork_op_copies_the_parent_and_the_childs_exit_frees_the_copies()
    {
        var r = SimRun.Run(Template(FaultPolicy.Merged) with { KeepEventLog = true, OpsPerTask = 60 });
        int forks = r.Events!.Count(e => e.Kind == EventKind.Fork);
        Assert.Equal(19, forks); // task 0: mmap, mmap, barrier, then 19 rounds of fork, NUMA scan, think time
        var m = r.Machine;
        Assert.True(m.Frames.Conserved, m.Frames.ToString());
        Assert.Equal(0, m.Sanitizer.Total);
        // Each child's exit_mmap unmapped all it had, so only the parent's pages (its 1,024-page region and the file
        // mapping's private copies) hold anonymous frames; 19 live copies would hold ~19 times as many.
        Assert.Equal(1 + forks, m.Mms.Count);
        Assert.All(m.Mms.Skip(1), child => Assert.Equal(0, child.Tree.Count));
        Assert.InRange(m.Frames.Anon, 1, 1024 + 64);
    }

    [Fact]
    public void With_the_6_4_fork_bug_switched_in_exploration_reports_S4_in_dup_mmap_and_the_faults_that_race_the_copy()
    {
        var r = ScheduleExplorer.Explore(Template(FaultPolicy.Merged, "fork-without-vma-write-lock"), firstSeed: 1, schedules: 10, jobs: 2);
        Assert.All(r.Findings, f => Assert.Equal("S4", f.Invariant));
        // The rule broken, at every fork of every schedule; and, one finding apart, the consequence: a fault holding
        // the VMA's read lock while copy_pte_range copies its page table.
        var unlocked = r.Findings.Single(f => f.Site == "dup_mmap (anon_vma_fork, copy_page_range), VMA not write-locked");
        Assert.Equal(10, unlocked.Seeds.Count);
        var race = r.Findings.Single(f => f.Site == "copy_pte_range, a fault races it");
        Assert.NotEmpty(race.Seeds);
        Assert.Contains("a fault races the copy", race.First!.Message);
    }

    [Theory]
    [InlineData("fork-without-vma-write-lock", nameof(BugSwitches.ForkWithoutVmaWriteLock))]
    [InlineData("mprotect-without-vma-start-write", nameof(BugSwitches.SkipVmaStartWriteInMprotect))]
    [InlineData("mmap-unlock-after-vma-fault", nameof(BugSwitches.MmapUnlockAfterVmaFault))]
    [InlineData("use-vma-after-retry-unlock", nameof(BugSwitches.UseVmaAfterRetryUnlock))]
    [InlineData("mm-lock-seq-without-acquire-release", nameof(BugSwitches.MmLockSeqWithoutOrdering))]
    public void Each_bug_name_switches_exactly_its_bug(string name, string property)
    {
        var bugs = new BugSwitches();
        bugs.Set(name);
        var on = typeof(BugSwitches).GetProperties().Where(p => p.PropertyType == typeof(bool) && (bool)p.GetValue(bugs)!).Select(p => p.Name);
        Assert.Equal([property], on);
        Assert.Contains(name, BugSwitches.Names.Keys);
    }

    [Fact]
    public void An_unknown_bug_name_is_refused_naming_the_known_ones()
    {
        var e = Assert.Throws<KernelConfigException>(() => SimRun.Run(Template(FaultPolicy.Merged, "no-such-bug")));
        Assert.Contains("no-such-bug", e.Message);
        Assert.Contains("fork-without-vma-write-lock", e.Message);
        Assert.Equal(BugSwitches.Names.Count, typeof(BugSwitches).GetProperties().Count(p => p.PropertyType == typeof(bool)));
    }
}
