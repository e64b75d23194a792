using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The emulated machine: its configuration, the start of every task, the workload barrier, progress, and the merged
/// results of every CPU, mm, VMA and node grain. Reentrant: barrier arrivals are parked turns.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class MachineGrain : Grain, IMachineGrain
{
    private RunConfig? _config;
    private MachineSpec? _spec;
    private readonly List<(int Cpu, TaskCompletionSource<long> Released)> _barrier = new();
    private long _barrierMax;
    private int _parties;
    private int _done;
    private readonly Dictionary<int, long> _faults = new();
    private long _maxClock;
    private string? _error;
    private readonly List<int> _cpus = new();

    public Task Configure(RunConfig config)
    {
        DelayDeactivation(RunLifetime.Hold);
        _config = config;
        _spec = MachineJson.Deserialize(config.MachineJson);
        return Task.CompletedTask;
    }

    public Task<RunConfig> GetConfig() => Task.FromResult(_config ?? throw new InvalidOperationException($"run {this.GetPrimaryKeyString()} is not configured"));

    public async Task Start()
    {
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        _parties = cfg.Tasks;
        for (int i = 0; i < cfg.Tasks; i++)
            _cpus.Add(cfg.Cpus is { } cpus ? cpus[i] : SimRun.Spread(i, _spec!));
        if (cfg.QuantumNs > 0)
        {
            // The quantum's hierarchy: each node's keeper holds its CPUs' clocks, the machine's only the nodes'.
            var byNode = _cpus.GroupBy(c => _spec!.NodeOfCpu(c)).ToList();
            await GrainFactory.GetGrain<ITimeKeeperGrain>(cfg.RunId).Configure(cfg.QuantumNs, byNode.Select(g => g.Key).ToArray());
            await Fanout.ForEach(byNode, g => GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(cfg.RunId, g.Key)).Configure(cfg.QuantumNs, g.ToArray()));
        }
        // Each node starts its own CPUs, the nodes in parallel (a bounded number at a time): one CPU after another from
        // here took 4,096 sequential round trips on a 4,096-CPU machine, and the machine grain calling every CPU at once
        // would put thousands of activations on the silos in one step.
        var tasksByNode = Enumerable.Range(0, cfg.Tasks).GroupBy(i => _spec!.NodeOfCpu(_cpus[i])).ToList();
        await Fanout.ForEach(tasksByNode, g => GrainFactory.GetGrain<INumaNodeGrain>(GrainKeys.Node(cfg.RunId, g.Key))
            .StartCpus(g.ToArray(), g.Select(i => _cpus[i]).ToArray(), attach: cfg.FedFiles is not null));
    }

    public Task<long> ArriveBarrier(int cpu, long clock)
    {
        _barrierMax = Math.Max(_barrierMax, clock);
        var tcs = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        _barrier.Add((cpu, tcs));
        ReleaseBarrierIfComplete();
        return tcs.Task;
    }

    private void ReleaseBarrierIfComplete()
    {
        if (_barrier.Count == 0 || _barrier.Count < _parties) return;
        long at = _barrierMax;
        foreach (var (_, tcs) in _barrier) tcs.SetResult(at);
        _barrier.Clear();
        _barrierMax = 0;
    }

    public Task Progress(int cpu, long faults, long clock)
    {
        _faults[cpu] = faults;
        _maxClock = Math.Max(_maxClock, clock);
        return Task.CompletedTask;
    }

    public Task TaskDone(int cpu, string? error)
    {
        _done++;
        _parties--;
        _error ??= error;
        ReleaseBarrierIfComplete();
        return Task.CompletedTask;
    }

    public async Task<RunStatus> Status() => new RunStatus
    {
        Tasks = _config?.Tasks ?? 0,
        Done = _done,
        Faults = _faults.Values.Sum(),
        MaxClock = _maxClock,
        Error = _error,
        Deadlock = _config is null ? null : await GrainFactory.GetGrain<IWaitGraphGrain>(_config.RunId).Deadlock(),
    };

    public async Task Stop()
    {
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        await Task.WhenAll(_cpus.Select(cpu => GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(cfg.RunId, _spec!.NodeOfCpu(cpu), cpu)).Stop()));
    }

    /// <summary>How long one grain may take to give its counters before it counts as lost (longer than the mm's own bound per VMA).</summary>
    public static readonly TimeSpan CollectBound = TimeSpan.FromSeconds(4);

    /// <summary>
    /// Every grain's counters, merged. All are asked at once; one that does not answer within <see cref="CollectBound"/>
    /// (its silo was lost) is listed in <see cref="StatsMessage.Lost"/> and the others still count.
    /// </summary>
    public async Task<StatsMessage> Collect()
    {
        DelayDeactivation(RunLifetime.Release);
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        var parts = new List<(StatsMessage Into, Task Read)>();
        void Read(string grain, Func<Task<StatsMessage>> read)
        {
            var into = new StatsMessage();
            parts.Add((into, StatsCodec.MergeSurviving(into, grain, read, CollectBound)));
        }
        foreach (int cpu in _cpus)
            Read($"cpu{cpu}", () => GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(cfg.RunId, _spec!.NodeOfCpu(cpu), cpu)).GetStats());
        Read("mm0", () => GrainFactory.GetGrain<IMmGrain>(GrainKeys.Mm(cfg.RunId, 0)).CollectStats());
        for (int n = 0; n < _spec!.Nodes; n++)
        {
            int node = n;
            Read($"node{node}", () => GrainFactory.GetGrain<INumaNodeGrain>(GrainKeys.Node(cfg.RunId, node)).GetStats());
        }
        if (cfg.QuantumNs > 0)
            Read("timekeeper", async () => new StatsMessage { MaxSkewNs = await GrainFactory.GetGrain<ITimeKeeperGrain>(cfg.RunId).MaxSkew() });
        await Task.WhenAll(parts.Select(p => p.Read));
        var all = new StatsMessage();
        foreach (var (into, _) in parts) StatsCodec.Merge(all, into); // in a fixed order, so results do not depend on who answered first
        return all;
    }
}
