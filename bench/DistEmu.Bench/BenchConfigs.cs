using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Bench;

/// <summary>The page-fault1 configurations shared by the BenchmarkDotNet class and the quick Stopwatch mode.</summary>
public static class BenchConfigs
{
    /// <summary>Total faults aimed at per run, split evenly over the tasks.</summary>
    public const long TotalFaults = 200_000;
    public const long MemoryPerNodeBytes = 8L << 30;
    public const string SizeMb = "16";

    public static readonly int[] CpuCounts = [1, 8, 64];
    public static readonly bool[] SanitizerModes = [true, false];

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

    public static SimRunOptions Options(int cpus, bool sanitizer) => new()
    {
        Machine = Machine(cpus),
        Workload = "page-fault1",
        Params = new Dictionary<string, string> { ["size_mb"] = SizeMb },
        OpsPerTask = TotalFaults / cpus,
        Tasks = cpus,
        Sanitizer = sanitizer,
        Seed = 1,
    };
}
