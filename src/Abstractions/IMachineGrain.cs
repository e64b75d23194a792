using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>The emulated machine (key: run id): configuration, start, barrier, progress and the merged results.</summary>
public interface IMachineGrain : IGrainWithStringKey
{
    Task Configure(RunConfig config);
    Task<RunConfig> GetConfig();
    /// <summary>Start every task; returns at once (the tasks run in their CPU grains).</summary>
    [ResponseTimeout("12:00:00")] // as long as starting thousands of CPUs on a busy cluster takes: see Collect
    Task Start();
    /// <summary>pthread_barrier_wait: resolves with the emulated time the last task arrived.</summary>
    Task<long> ArriveBarrier(int cpu, long clock);
    Task TaskDone(int cpu, string? error);
    /// <summary>Tasks done, and the ops, faults and clock the nodes' CPUs last reported (summed node by node).</summary>
    Task<RunStatus> Status();
    /// <summary>For a run that stopped progressing: which tasks are not done, and how far each got.</summary>
    Task<string> DescribeStall();
    /// <summary>Stop every task after its current op (Ctrl-C, a time limit).</summary>
    Task Stop();
    /// <summary>
    /// The counters of every grain of the run, merged along the topology. It takes as long as the grains take: its
    /// response timeout is a backstop for a hung cluster, not a bound on a slow one (lost silos are told by membership).
    /// </summary>
    [ResponseTimeout("12:00:00")]
    Task<StatsMessage> Collect();
}
