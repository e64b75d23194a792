using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sched;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Telemetry.Tests;

/// <summary>An in-memory trace sink.</summary>
internal sealed class ListSink : ITraceSink
{
    public List<IReadOnlyList<EmuSpan>> Traces { get; } = new();
    public bool Completed { get; private set; }
    public void Write(IReadOnlyList<EmuSpan> trace) => Traces.Add(trace);
    public void Complete() => Completed = true;
    public IEnumerable<EmuSpan> All => Traces.SelectMany(t => t);
}

/// <summary>The LKML case as op streams (the same one the grains tests run), recorded by a <see cref="SpanRecorder"/>.</summary>
internal static class Scenarios
{
    private const long P = 4096;
    public const long A = 0x7f00_0000_0000, B = 0x7f00_4000_0000;

    public static MachineSpec Small(FaultPolicy policy) => new()
    {
        Name = "small", Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 1L << 30, Distance = MachineSpec.UniformDistance(2), Policy = policy,
    };

    public static RunResult Lkml(FaultPolicy policy, bool sameVma, ITraceSink sink, double ratio = 1.0)
    {
        var setup = new List<Op> { Op.MapAnon(A, 512 * P), Op.MapAnon(B, 512 * P) };
        for (int i = 0; i < 16; i++) setup.Add(Op.Write(A + i * P));
        setup.Add(Op.Write(B));
        var script = new Dictionary<int, IReadOnlyList<Op>>
        {
            [0] = setup,
            [1] = [Op.Compute(40_000), Op.Write(A + 7 * P)],
            [2] = [Op.Compute(50_000), Op.Unmap(sameVma ? A : B, 512 * P)],
            [3] = [Op.Compute(30_000), Op.MigrateTo(A + 7 * P, P, 1)],
        };
        var recorder = new SpanRecorder(sink, new TraceOptions { Policy = policy.Name(), SampleRatio = ratio, Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000) });
        return SimRun.Run(new SimRunOptions
        {
            Machine = Small(policy), Workload = "migrate-munmap", Tasks = 4, OpsPerTask = 100, Script = script,
            Delays = new Dictionary<(int, PreemptSite), long> { [(5, PreemptSite.MigrateBeforeCopy)] = 150_000 },
            Observer = recorder,
        });
    }
}
