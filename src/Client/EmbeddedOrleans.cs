using System.Globalization;
using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Replay;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>The default engine: one silo in this process (localhost clustering) with its grain factory as the client.</summary>
public static class EmbeddedOrleans
{
    /// <summary>The measured skew under --quantum, as the run prints it.</summary>
    public static string SkewLine(long quantumNs, long skewNs) => string.Create(CultureInfo.InvariantCulture,
        $"quantum {quantumNs:N0} ns (node → machine time keepers): measured max skew {skewNs:N0} ns");

    /// <summary>A perf trace replayed on the embedded silo (<see cref="OrleansReplay"/>), with the silo's grain-call counts.</summary>
    /// <param name="tracing">Spans recorded in the grains, handed to the client during the run and written at its end (null: no tracing).</param>
    public static OrleansReplayResult Replay(string trace, MachineSpec machine, ReplayOptions options, OrleansTraceCollector? tracing = null) =>
        ReplayAsync(trace, machine, options, tracing).GetAwaiter().GetResult();

    private static async Task<OrleansReplayResult> ReplayAsync(string trace, MachineSpec machine, ReplayOptions options, OrleansTraceCollector? tracing)
    {
        using var host = await SiloHosting.StartEmbeddedAsync(activityPropagation: tracing?.Config.LiveRoots == true);
        try
        {
            var r = await OrleansReplay.Run(host.Grains(), trace, machine, options, tracing: tracing);
            r.Run.GrainCalls = (host.GrainCalls(), host.CrossSiloGrainCalls());
            return r;
        }
        finally
        {
            await host.StopAsync();
        }
    }

    /// <param name="placement">The machine file's placement map: one silo here, so it may name silo 0 only (the caller checks).</param>
    /// <param name="tracing">Spans recorded in the grains, handed to the client during the run and written at its end (null: no tracing).</param>
    /// <param name="progress">The run's status each time the machine grain reports it (the caller shows it).</param>
    public static RunResult Run(SimRunOptions options, long quantumNs, TextWriter stdout, PlacementMap? placement = null, OrleansTraceCollector? tracing = null,
        Action<RunStatus>? progress = null) =>
        RunAsync(options, quantumNs, stdout, placement, tracing, progress).GetAwaiter().GetResult();

    private static async Task<RunResult> RunAsync(SimRunOptions options, long quantumNs, TextWriter stdout, PlacementMap? placement, OrleansTraceCollector? tracing,
        Action<RunStatus>? progress)
    {
        // --trace-orleans: Orleans' spans join the traces of the faults whose grain calls they are.
        using var host = await SiloHosting.StartEmbeddedAsync(activityPropagation: tracing?.Config.LiveRoots == true);
        try
        {
            var result = await OrleansRun.Run(host.Grains(), options, status => progress?.Invoke(status), quantumNs: quantumNs, nodeSilos: placement?.SiloOfNode(), maxSkew: skew => stdout.WriteLine(SkewLine(quantumNs, skew)),
                tracing: tracing);
            result.GrainCalls = (host.GrainCalls(), host.CrossSiloGrainCalls());
            return result;
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
