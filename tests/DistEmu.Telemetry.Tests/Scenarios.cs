using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Telemetry.Tests;

/// <summary>An in-memory trace sink (clones: the recorder reuses its span objects).</summary>
internal sealed class ListSink : ITraceSink
{
    public List<IReadOnlyList<EmuSpan>> Traces { get; } = new();
    public bool Completed { get; private set; }
    public void Write(IReadOnlyList<EmuSpan> trace) => Traces.Add(trace.Select(s => s.Clone()).ToList());
    public void Complete() => Completed = true;
    public IEnumerable<EmuSpan> All => Traces.SelectMany(t => t);
}

/// <summary>The LKML case as op streams (the same one the grains tests run), recorded by a <see cref="SpanRecorder"/>.</summary>
internal static class Scenarios
{
    public const long A = LkmlCase.A, B = LkmlCase.B;

    public static MachineSpec Small(FaultPolicy policy) => LkmlCase.Machine(policy);

    public static RunResult Lkml(FaultPolicy policy, bool sameVma, ITraceSink sink, double ratio = 1.0)
    {
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = policy.Name(), SampleRatio = ratio, Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000) });
        return SimRun.Run(LkmlCase.Options(policy, sameVma, observer: recorder));
    }
}
