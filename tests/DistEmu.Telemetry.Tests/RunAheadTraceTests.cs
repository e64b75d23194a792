using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Telemetry.Tests;

/// <summary>
/// The sim engine's run-ahead changes the host order in which CPUs record their faults, not the traces: ids come from
/// each CPU's own stream, so head sampling keeps the same faults and every span has the same ids and times.
/// </summary>
public class RunAheadTraceTests
{
    private static List<string> Spans(bool runAhead)
    {
        var sink = new ListSink();
        var recorder = new SpanRecorder(sink, new TracingOptions { Policy = "merged", SampleRatio = 0.05, Seed = 9, Epoch = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000) });
        var machine = new MachineSpec { Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 1L << 30, Distance = MachineSpec.UniformDistance(2), Policy = FaultPolicy.Merged };
        var r = SimRun.Run(new SimRunOptions
        {
            Machine = machine,
            Workload = "page-fault1",
            Params = new Dictionary<string, string> { ["size_mb"] = "2" },
            OpsPerTask = 3_000,
            Observer = recorder,
            RunAhead = runAhead,
        });
        Assert.Equal(runAhead, r.RunAheadGrants is > 0);
        return sink.All.Select(s => $"{s.Trace} {s.SpanId:x16} {s.ParentId:x16} {s.Name} {s.StartNs} {s.EndNs}").Order().ToList();
    }

    [Fact]
    public void Sampled_traces_are_the_same_with_and_without_run_ahead()
    {
        var exact = Spans(runAhead: false);
        var ahead = Spans(runAhead: true);
        Assert.True(exact.Count > 100, $"only {exact.Count} spans sampled");
        Assert.Equal(exact, ahead);
    }
}
