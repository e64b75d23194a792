using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Silo;

/// <summary>
/// Runs a workload on the orleans engine: configures the machine grain, starts every CPU grain, follows progress
/// until every task is done, and merges the counters of all grains into the same <see cref="RunResult"/> the sim
/// engine gives.
/// </summary>
public static class OrleansRun
{
    /// <summary>Progress callback: (tasks done, tasks, faults so far, max emulated ns).</summary>
    /// <param name="quantumNs">The skew bound between CPUs in emulated ns (0: lax).</param>
    public static async Task<RunResult> Run(IGrainFactory grains, SimRunOptions o, Action<RunStatus>? progress = null,
        TimeSpan? stallTimeout = null, long quantumNs = 0)
    {
        Workloads.Create(o.Workload, o.Params); // validates name and parameters before anything starts
        int tasks = o.Tasks ?? o.Machine.Cpus;
        if (tasks < 1 || tasks > o.Machine.Cpus)
            throw new KernelConfigException("tasks", tasks, $"must be in 1..{o.Machine.Cpus} (one task per CPU)");
        if (o.OpsPerTask < 1)
            throw new KernelConfigException("ops", o.OpsPerTask, "must be at least 1");
        var sw = Stopwatch.StartNew();
        string run = $"run-{Guid.NewGuid():N}";
        var config = new RunConfig
        {
            RunId = run, MachineJson = MachineJson.Serialize(o.Machine), Sanitizer = o.Sanitizer, Workload = o.Workload,
            Params = o.Params?.ToDictionary(kv => kv.Key, kv => kv.Value) ?? new(), Seed = o.Seed, OpsPerTask = o.OpsPerTask,
            Tasks = tasks, EmulatedNsLimit = o.EmulatedNs ?? 0, QuantumNs = quantumNs,
            Script = o.Script?.ToDictionary(kv => kv.Key, kv => kv.Value.Select(OpMessages.From).ToArray()),
            Delays = o.Delays?.ToDictionary(kv => GrainScheduler.DelayKey(kv.Key.Cpu, kv.Key.Site), kv => kv.Value),
        };
        var machine = grains.GetGrain<IMachineGrain>(run);
        await machine.Configure(config);
        await machine.Start();
        var stall = stallTimeout ?? TimeSpan.FromSeconds(60);
        var lastChange = Stopwatch.StartNew();
        long lastFaults = -1;
        int lastDone = -1;
        RunStatus status;
        RunStop? stopped = null;
        while (true)
        {
            await Task.Delay(50, CancellationToken.None);
            if (stopped is null && (stopped = o.Stop?.Invoke()) != null)
            {
                await machine.Stop();
                lastChange.Restart();
            }
            status = await machine.Status();
            progress?.Invoke(status);
            if (status.Done >= status.Tasks) break;
            if (status.Faults != lastFaults || status.Done != lastDone)
            {
                lastFaults = status.Faults;
                lastDone = status.Done;
                lastChange.Restart();
            }
            else if (lastChange.Elapsed > stall)
            {
                throw new TimeoutException($"no progress for {stall.TotalSeconds:F0} s: {status.Done} of {status.Tasks} tasks done, {status.Faults} faults");
            }
        }
        if (status.Error != null)
            throw new InvalidOperationException("a task failed: " + status.Error);
        var stats = await machine.Collect();
        sw.Stop();
        var m = StatsCodec.ToMachine(o.Machine, o.Sanitizer, stats);
        return new RunResult
        {
            Machine = m,
            Options = o,
            Engine = "orleans",
            Tasks = tasks,
            PerTask = [new TaskCounters { Ops = stats.Ops, Accesses = stats.Accesses, Sigsegv = stats.Sigsegv, Sigbus = stats.Sigbus }],
            EmulatedNs = stats.MaxClock,
            HostSeconds = sw.Elapsed.TotalSeconds,
            Stalled = stats.Stalled,
            Status = stopped is { Aborted: true } ? "aborted" : "completed",
            Reason = stopped?.Reason,
        };
    }
}
