using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Grains.Support;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The quantum for one emulated node's CPUs (the lower level of Graphite's skew bound, on the node's silo): each CPU
/// reports its clock here when it reaches its horizon and waits until the slowest running CPU of the machine is within
/// the quantum. The node tells the machine's time keeper only when its own slowest running CPU moves, and learns the
/// machine-wide horizon from it. Sleeping CPUs are left out, so a wait for a lock never waits for its own holder's
/// time. Reentrant: Sync calls are parked turns.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class NodeTimeKeeperGrain : Grain, INodeTimeKeeperGrain
{
    private long _quantum;
    private int _node;
    private readonly Dictionary<int, long> _clock = new();
    private readonly Dictionary<int, HashSet<long>> _sleeps = new();
    private readonly HashSet<(int, long)> _earlyWakes = new();
    private readonly List<(int Cpu, long Clock, TaskCompletionSource<long> Go)> _parked = new();
    private long _horizon;
    private long _horizonSeq;
    private long _reported;
    private long _reportSeq;
    private long _maxSkew;

    public Task Configure(long quantumNs, int[] cpus)
    {
        DelayDeactivation(RunLifetime.Hold);
        _quantum = quantumNs;
        _node = GrainKeys.NodeOf(this.GetPrimaryKeyString());
        foreach (int c in cpus) _clock[c] = 0;
        _horizon = quantumNs; // every CPU of the machine starts at 0: the machine's first horizon
        _reported = 0;
        return Task.CompletedTask;
    }

    /// <summary>This node's slowest running CPU (long.MaxValue when none runs).</summary>
    private long Slowest()
    {
        long min = long.MaxValue;
        foreach (var (cpu, clock) in _clock)
            if (!(_sleeps.TryGetValue(cpu, out var s) && s.Count > 0) && clock < min) min = clock;
        return min;
    }

    /// <summary>Tells the machine if this node's slowest running CPU moved, then lets go whoever the known horizon covers.</summary>
    private void Changed()
    {
        long slowest = Slowest();
        if (slowest != _reported)
        {
            _reported = slowest;
            _ = GrainFactory.GetGrain<ITimeKeeperGrain>(GrainKeys.RunOf(this.GetPrimaryKeyString())).Report(_node, ++_reportSeq, slowest);
        }
        Release();
    }

    private void Release()
    {
        for (int i = _parked.Count - 1; i >= 0; i--)
        {
            if (_parked[i].Clock > _horizon) continue;
            _parked[i].Go.SetResult(_horizon);
            _parked.RemoveAt(i);
        }
    }

    public Task<long> Sync(int cpu, long clock)
    {
        if (_clock.TryGetValue(cpu, out var old) && clock < old) clock = old;
        _clock[cpu] = clock;
        if (_horizon != long.MaxValue) _maxSkew = Math.Max(_maxSkew, clock - (_horizon - _quantum));
        Changed();
        if (clock <= _horizon) return Task.FromResult(_horizon);
        var go = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        _parked.Add((cpu, clock, go));
        return go.Task;
    }

    public Task Horizon(long seq, long horizon)
    {
        if (seq <= _horizonSeq) return Task.CompletedTask; // an older push overtaken by a newer one
        _horizonSeq = seq;
        _horizon = horizon;
        Release();
        return Task.CompletedTask;
    }

    public Task Block(int cpu, long token)
    {
        if (!_earlyWakes.Remove((cpu, token)))
        {
            if (!_sleeps.TryGetValue(cpu, out var s)) _sleeps[cpu] = s = new HashSet<long>();
            s.Add(token);
        }
        Changed();
        return Task.CompletedTask;
    }

    public Task Unblock(int cpu, long token, long clock)
    {
        if (!(_sleeps.TryGetValue(cpu, out var s) && s.Remove(token)))
            _earlyWakes.Add((cpu, token));
        if (_clock.TryGetValue(cpu, out var old) && clock > old) _clock[cpu] = clock;
        Changed();
        return Task.CompletedTask;
    }

    public Task Done(int cpu)
    {
        _clock.Remove(cpu);
        _sleeps.Remove(cpu);
        Changed();
        return Task.CompletedTask;
    }

    public Task<long> MaxSkew()
    {
        DelayDeactivation(RunLifetime.Release);
        return Task.FromResult(_maxSkew);
    }
}
