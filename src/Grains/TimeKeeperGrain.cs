using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using Orleans.Concurrency;

namespace DistEmu.Grains;

/// <summary>
/// The quantum (Graphite's skew bound) over emulated time: each CPU reports its clock when it reaches its horizon and
/// waits until the slowest running CPU is within the quantum. Sleeping CPUs are left out, so a wait for a lock never
/// waits for its own holder's time. Reentrant: Sync calls are parked turns.
/// </summary>
[Reentrant]
[NumaPlacement]
public sealed class TimeKeeperGrain : Grain, ITimeKeeperGrain
{
    private long _quantum;
    private readonly Dictionary<int, long> _clock = new();
    private readonly Dictionary<int, HashSet<long>> _sleeps = new();
    private readonly HashSet<(int, long)> _earlyWakes = new();
    private readonly List<(int Cpu, long Clock, TaskCompletionSource<long> Go)> _parked = new();
    private long _maxSkew;

    public Task Configure(long quantumNs, int[] cpus)
    {
        _quantum = quantumNs;
        foreach (int c in cpus) _clock[c] = 0;
        return Task.CompletedTask;
    }

    private long Horizon()
    {
        long min = long.MaxValue;
        foreach (var (cpu, clock) in _clock)
            if (!(_sleeps.TryGetValue(cpu, out var s) && s.Count > 0) && clock < min) min = clock;
        return min == long.MaxValue ? long.MaxValue : min + _quantum;
    }

    private void Release()
    {
        long h = Horizon();
        for (int i = _parked.Count - 1; i >= 0; i--)
        {
            if (_parked[i].Clock > h) continue;
            _parked[i].Go.SetResult(h);
            _parked.RemoveAt(i);
        }
    }

    public Task<long> Sync(int cpu, long clock)
    {
        if (_clock.TryGetValue(cpu, out var old) && clock < old) clock = old;
        _clock[cpu] = clock;
        long h = Horizon();
        if (h != long.MaxValue) _maxSkew = Math.Max(_maxSkew, clock - (h - _quantum));
        Release();
        if (clock <= h) return Task.FromResult(h);
        var go = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        _parked.Add((cpu, clock, go));
        return go.Task;
    }

    public Task Block(int cpu, long token)
    {
        if (!_earlyWakes.Remove((cpu, token)))
        {
            if (!_sleeps.TryGetValue(cpu, out var s)) _sleeps[cpu] = s = new HashSet<long>();
            s.Add(token);
        }
        Release();
        return Task.CompletedTask;
    }

    public Task Unblock(int cpu, long token, long clock)
    {
        if (!(_sleeps.TryGetValue(cpu, out var s) && s.Remove(token)))
            _earlyWakes.Add((cpu, token));
        if (_clock.TryGetValue(cpu, out var old) && clock > old) _clock[cpu] = clock;
        Release();
        return Task.CompletedTask;
    }

    public Task Done(int cpu)
    {
        _clock.Remove(cpu);
        _sleeps.Remove(cpu);
        Release();
        return Task.CompletedTask;
    }

    public Task<long> MaxSkew() => Task.FromResult(_maxSkew);
}
