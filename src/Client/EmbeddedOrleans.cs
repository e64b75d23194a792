using System.Diagnostics;
using System.Globalization;
using DistEmu.Kernel.Sim;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>The default engine: one silo in this process (localhost clustering) with its grain factory as the client.</summary>
public static class EmbeddedOrleans
{
    public static RunResult Run(SimRunOptions options, long quantumNs, TextWriter stdout, OrleansTraceCollector? tracing = null) =>
        RunAsync(options, quantumNs, stdout, tracing).GetAwaiter().GetResult();

    private static async Task<RunResult> RunAsync(SimRunOptions options, long quantumNs, TextWriter stdout, OrleansTraceCollector? tracing)
    {
        // --trace-orleans: Orleans' spans join the traces of the faults whose grain calls they are.
        using var host = await SiloHosting.StartEmbeddedAsync(activityPropagation: tracing?.Config.LiveRoots == true);
        try
        {
            var every = Stopwatch.StartNew();
            var started = Stopwatch.StartNew();
            var result = await OrleansRun.Run(host.Grains(), options, status =>
            {
                if (every.Elapsed < TimeSpan.FromSeconds(2)) return;
                every.Restart();
                double emuS = status.MaxClock / 1e9;
                stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"progress: {status.Done}/{status.Tasks} tasks done, {status.Faults:N0} faults, {(emuS > 0 ? status.Faults / emuS : 0):N0} emulated faults/s, {status.Faults / started.Elapsed.TotalSeconds:N0} host faults/s"));
            }, quantumNs: quantumNs, tracing: tracing);
            long calls = host.GrainCalls();
            return new RunResult
            {
                Machine = result.Machine, Options = result.Options, PerTask = result.PerTask, Engine = result.Engine, Tasks = result.Tasks,
                EmulatedNs = result.EmulatedNs, HostSeconds = result.HostSeconds, Stalled = result.Stalled, Status = result.Status, Reason = result.Reason,
                GrainCalls = (calls, host.CrossSiloGrainCalls()),
            };
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
