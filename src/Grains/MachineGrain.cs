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
        _cpus.AddRange(RunDescription.CpusOfTasks(cfg, _spec!));
        if (cfg.QuantumNs > 0)
        {
            // The quantum's hierarchy: each node's keeper holds its CPUs' clocks, the machine's only the nodes'.
            var byNode = _cpus.GroupBy(c => _spec!.NodeOfCpu(c)).ToList();
            var taskOf = _cpus.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i); // each CPU's rank at a tie
            await GrainFactory.GetGrain<ITimeKeeperGrain>(cfg.RunId).Configure(cfg.QuantumNs, byNode.Select(g => g.Key).ToArray());
            await Fanout.ForEach(byNode, g => GrainFactory.GetGrain<INodeTimeKeeperGrain>(GrainKeys.TimeKeeper(cfg.RunId, g.Key))
                .Configure(cfg.QuantumNs, g.ToArray(), g.Select(c => taskOf[c]).ToArray()));
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

    public Task TaskDone(int cpu, string? error)
    {
        _done++;
        _parties--;
        _error ??= error;
        ReleaseBarrierIfComplete();
        return Task.CompletedTask;
    }

    private INumaNodeGrain Node(int node) => GrainFactory.GetGrain<INumaNodeGrain>(GrainKeys.Node(_config!.RunId, node));

    public async Task<RunStatus> Status()
    {
        var status = new RunStatus { Tasks = _config?.Tasks ?? 0, Done = _done, Error = _error };
        if (_config is null) return status;
        // Progress is summed where it is made: each node holds its CPUs' latest reports.
        var nodes = await Task.WhenAll(Enumerable.Range(0, _spec!.Nodes).Select(n => Node(n).GetProgress(detail: false)));
        foreach (var p in nodes)
        {
            status.Ops += p.Ops;
            status.Faults += p.Faults;
            status.MaxClock = Math.Max(status.MaxClock, p.MaxClock);
        }
        status.Deadlock = await GrainFactory.GetGrain<IWaitGraphGrain>(_config.RunId).Deadlock();
        return status;
    }

    public async Task<string> DescribeStall()
    {
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        var nodes = await Task.WhenAll(Enumerable.Range(0, _spec!.Nodes).Select(n => Node(n).GetProgress(detail: true)));
        // Least advanced first: the tasks most likely to be what the others wait for.
        var running = nodes.SelectMany(p => p.Running).OrderBy(c => c.Ops).ThenBy(c => c.Cpu).ToList();
        string list = running.Count == 0 ? "no CPU reported an op" : string.Join("; ", running.Take(12)) + (running.Count > 12 ? $"; … {running.Count - 12} more" : "");
        return $"{cfg.Tasks - _done} task(s) not done ({list})";
    }

    public async Task Stop()
    {
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        await Fanout.ForEach(_cpus, cpu => GrainFactory.GetGrain<ICpuGrain>(GrainKeys.Cpu(cfg.RunId, _spec!.NodeOfCpu(cpu), cpu)).Stop());
    }

    /// <summary>
    /// Every grain's counters, merged along the topology: the mm names its VMA grains by node, each node merges its
    /// CPUs' and VMAs' counters with its own, and the machine merges the nodes, the mm and the time keeper. No call has a
    /// time bound: a grain counts as lost only when the call to it fails, as Orleans makes it fail once its membership
    /// declares the grain's silo dead; such grains are listed in <see cref="StatsMessage.Lost"/> and the others still count.
    /// </summary>
    public async Task<StatsMessage> Collect()
    {
        DelayDeactivation(RunLifetime.Release);
        var cfg = _config ?? throw new InvalidOperationException("configure the run first");
        var mm = GrainFactory.GetGrain<IMmGrain>(GrainKeys.Mm(cfg.RunId, 0));
        var vmas = new Dictionary<int, int[]>();
        var mmPart = new StatsMessage();
        try
        {
            vmas = await mm.VmasByNode();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            mmPart.Lost.Add($"mm0 and its VMAs ({e.GetType().Name})");
        }
        var cpusByNode = _cpus.GroupBy(_spec!.NodeOfCpu).ToDictionary(g => g.Key, g => g.ToArray());
        var nodeParts = new StatsMessage[_spec.Nodes];
        await Fanout.ForEach(Enumerable.Range(0, _spec.Nodes).ToArray(), async n =>
        {
            int[] cpus = cpusByNode.GetValueOrDefault(n) ?? [], ids = vmas.GetValueOrDefault(n) ?? [];
            var part = nodeParts[n] = new StatsMessage();
            await StatsCodec.MergeOrLost(part, $"node{n}", () => Node(n).Collect(cpus, 0, ids));
            if (part.Lost.Count > 0 && part.Lost[^1].StartsWith($"node{n} (", StringComparison.Ordinal))
            {
                // The node's own call failed: everything it would have read is unaccounted for, and named.
                part.Lost.AddRange(cpus.Select(c => $"cpu{c} (read through node{n}, lost)"));
                part.Lost.AddRange(ids.Select(v => $"vma{v} (read through node{n}, lost)"));
            }
        }, width: 8);
        var freshVmas = nodeParts.SelectMany(p => p.FreshVmas).ToArray();
        if (mmPart.Lost.Count == 0)
            await StatsCodec.MergeOrLost(mmPart, "mm0", () => mm.CollectStats(freshVmas));
        var all = new StatsMessage();
        foreach (var part in nodeParts) StatsCodec.Merge(all, part); // in a fixed order, so results do not depend on who answered first
        StatsCodec.Merge(all, mmPart);
        all.FreshVmas.Clear(); // the mm has told which of them are lost
        if (cfg.QuantumNs > 0)
            await StatsCodec.MergeOrLost(all, "timekeeper", async () =>
            {
                var q = await GrainFactory.GetGrain<ITimeKeeperGrain>(cfg.RunId).MaxSkew();
                return new StatsMessage { MaxSkewNs = q.MaxSkewNs, QuantumSyncs = q.Syncs, LookaheadGrants = q.LookaheadGrants };
            });
        return all;
    }
}
