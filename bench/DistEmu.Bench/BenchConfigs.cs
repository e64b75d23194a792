using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>
/// The page-fault1 configurations shared by the BenchmarkDotNet class and the quick Stopwatch mode: the workload as
/// will-it-scale runs it (128 MiB per task), long enough that every task maps, touches and unmaps its area at least
/// once, so the runs include the system calls that end every task's run-ahead.
/// </summary>
public static class BenchConfigs
{
    public const long MemoryPerNodeBytes = 8L << 30;
    public const string SizeMb = "128";

    /// <summary>Ops per task: at least 40,000 (a 32,770-op cycle and a fifth of the next), 400,000 in all.</summary>
    public static long OpsPerTask(int cpus) => Math.Max(40_000, 400_000 / cpus);

    public static readonly int[] CpuCounts = [1, 8, 64];
    public static readonly bool[] SanitizerModes = [true, false];
    /// <summary>The sim engine with run-ahead (its default), and exact (every task waits its turn at every sync point).</summary>
    public static readonly bool[] RunAheadModes = [true, false];

    /// <summary>1 CPU: 1 node × 1; 8 CPUs: 2 nodes × 4; 64 CPUs: 2 nodes × 32.</summary>
    public static MachineSpec Machine(int cpus)
    {
        var (nodes, perNode) = cpus switch
        {
            1 => (1, 1),
            8 => (2, 4),
            64 => (2, 32),
            _ => throw new ArgumentOutOfRangeException(nameof(cpus), cpus, "expected 1, 8 or 64"),
        };
        return new MachineSpec
        {
            Name = $"bench-{nodes}x{perNode}",
            Nodes = nodes,
            CpusPerNode = perNode,
            MemoryPerNodeBytes = MemoryPerNodeBytes,
            Distance = MachineSpec.UniformDistance(nodes),
            Policy = FaultPolicy.Merged,
        };
    }

    public static SimRunOptions Options(int cpus, bool sanitizer, bool runAhead = true) => new()
    {
        Machine = Machine(cpus),
        Workload = "page-fault1",
        Params = new Dictionary<string, string> { ["size_mb"] = SizeMb },
        OpsPerTask = OpsPerTask(cpus),
        RunAhead = runAhead,
        Tasks = cpus,
        Sanitizer = sanitizer,
        Seed = 1,
    };
}
