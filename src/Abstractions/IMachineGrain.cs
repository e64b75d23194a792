using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>The emulated machine (key: run id): configuration, start, barrier, progress and the merged results.</summary>
public interface IMachineGrain : IGrainWithStringKey
{
    Task Configure(RunConfig config);
    Task<RunConfig> GetConfig();
    /// <summary>Start every task; returns at once (the tasks run in their CPU grains).</summary>
    Task Start();
    /// <summary>pthread_barrier_wait: resolves with the emulated time the last task arrived.</summary>
    Task<long> ArriveBarrier(int cpu, long clock);
    [OneWay] Task Progress(int cpu, long faults, long clock);
    Task TaskDone(int cpu, string? error);
    Task<RunStatus> Status();
    /// <summary>Stop every task after its current op (Ctrl-C, a time limit).</summary>
    Task Stop();
    /// <summary>The counters of every grain of the run, merged.</summary>
    Task<StatsMessage> Collect();
}
