using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// Schedule exploration (PROTOCOL.md §7) of the I/O paths: faults that drop their lock for a file or swap read while
/// other CPUs fault on the pages being read, munmap and mprotect. page-fault3 on disk files under every policy (it has
/// no migration, so even the unsafe proposals must come out clean), and `mixed` with a 256-page disk file (several
/// read-around windows, shared by all CPUs) under every safe policy.
/// </summary>
public class FaultIoExplorationTests
{
    private const int Seeds = 300;

    public static TheoryData<string> AllPolicies => new(FaultPolicies.All.Select(p => p.Name()));
    public static TheoryData<string> SafePolicies => new(FaultPolicies.Safe.Select(p => p.Name()));

    private static void Explore(FaultPolicy policy, string workload, Dictionary<string, string> param, int ops)
    {
        long majors = 0, faults = 0;
        for (long seed = 1; seed <= Seeds; seed++)
        {
            var r = SimRun.Run(new SimRunOptions
            {
                Machine = new MachineSpec { Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 256L << 20, Distance = MachineSpec.UniformDistance(2), Policy = policy },
                Workload = workload,
                Params = param,
                Seed = seed,
                OpsPerTask = ops,
                Exploration = Exploration.Default,
            });
            var m = r.Machine;
            if (m.Sanitizer.Total > 0 || r.Stalled.Count > 0)
                Assert.Fail($"{workload} seed {seed} under {policy.Name()}: {m.Sanitizer.Violations.FirstOrDefault()}\n" +
                            string.Join("\n", m.Sanitizer.Violations.FirstOrDefault()?.History ?? []) + string.Join("\n", r.Stalled));
            Assert.True(m.Frames.Conserved, $"seed {seed}: frames not conserved: {m.Frames}");
            Assert.True(m.VmStat.pgfault <= m.VmStat.Faults, $"seed {seed}: pgfault {m.VmStat.pgfault} > faults {m.VmStat.Faults}: a RETRY was counted");
            majors += m.VmStat.pgmajfault;
            faults += m.VmStat.Faults;
        }
        Assert.True(majors >= Seeds, $"{workload} under {policy.Name()}: only {majors} major faults in {Seeds} schedules ({faults} faults): the I/O path was barely run");
    }

    [Theory]
    [MemberData(nameof(AllPolicies))]
    public void Disk_backed_page_fault3_has_no_violation_in_many_schedules(string policyName) =>
        Explore(FaultPolicies.Parse(policyName), "page-fault3", new() { ["size_mb"] = "1", ["disk"] = "1" }, ops: 300);

    [Theory]
    [MemberData(nameof(SafePolicies))]
    public void Mixed_with_a_large_disk_file_has_no_violation_in_many_schedules(string policyName) =>
        Explore(FaultPolicies.Parse(policyName), "mixed", new() { ["file_pages"] = "256" }, ops: 150);
}
