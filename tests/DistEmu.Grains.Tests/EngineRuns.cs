using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

internal static class EngineRuns
{
    public static MachineSpec Small(FaultPolicy policy) => new()
    {
        Name = "small",
        Nodes = 2,
        CpusPerNode = 4,
        MemoryPerNodeBytes = 1L << 30,
        Distance = MachineSpec.UniformDistance(2),
        Policy = policy,
    };

    public static SimRunOptions Options(string workload, FaultPolicy policy, long ops) => new()
    {
        Machine = Small(policy),
        Workload = workload,
        OpsPerTask = ops,
        Params = workload.StartsWith("page-fault", StringComparison.Ordinal) ? new Dictionary<string, string> { ["size_mb"] = "1" } : null,
    };

    public static Task<RunResult> Orleans(IGrainFactory grains, SimRunOptions o) =>
        OrleansRun.Run(grains, o, stallTimeout: TimeSpan.FromSeconds(30));

    public static string Describe(RunResult r) =>
        $"{r.Engine}: faults={r.Machine.VmStat.Faults} pgfault={r.Machine.VmStat.pgfault} frames {r.Machine.Frames}; violations: " +
        string.Join("; ", r.Machine.Sanitizer.Violations.Take(3));
}
