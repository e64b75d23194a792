using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Silo;

namespace DistEmu.Grains.Tests;

internal static class EngineRuns
{
    /// <summary>The small preset's shape (2 nodes × 4 CPUs, 1 GiB each), the one the LKML case runs on.</summary>
    public static MachineSpec Small(FaultPolicy policy) => LkmlCase.Machine(policy);

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
