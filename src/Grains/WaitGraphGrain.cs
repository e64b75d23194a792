using System.Diagnostics;
using DistEmu.Abstractions;
using DistEmu.Grains.Placement;

namespace DistEmu.Grains;

/// <summary>
/// The wait-for graph over CPUs: an edge per sleeping CPU to the CPUs holding what it sleeps on. A cycle is a
/// candidate deadlock; it is confirmed when the same sleeps still stand after <see cref="Confirm"/> of host time, which
/// rules out edges kept alive only by a wake-up message still in flight.
/// </summary>
[NumaPlacement]
public sealed class WaitGraphGrain : Grain, IWaitGraphGrain
{
    /// <summary>How long a candidate cycle must stand before <see cref="Deadlock"/> reports it.</summary>
    public static readonly TimeSpan Confirm = TimeSpan.FromMilliseconds(500);
    private readonly Dictionary<int, (long Token, string What, int[] Holders)> _waits = new();
    private readonly HashSet<(int, long)> _earlyWakes = new();
    private (List<(int Cpu, long Token)> Sleeps, string Text, Stopwatch Since)? _candidate;

    public Task Wait(int cpu, long token, string what, int[] holders)
    {
        if (_earlyWakes.Remove((cpu, token))) return Task.CompletedTask;
        _waits[cpu] = (token, what, holders);
        if (_candidate is null) FindCycle(cpu);
        return Task.CompletedTask;
    }

    public Task Woke(int cpu, long token)
    {
        if (_waits.TryGetValue(cpu, out var w) && w.Token == token)
            _waits.Remove(cpu);
        else
            _earlyWakes.Add((cpu, token));
        if (_candidate is { } c && c.Sleeps.Any(s => s.Cpu == cpu && s.Token == token))
            DropCandidate();
        return Task.CompletedTask;
    }

    public Task<string?> Deadlock()
    {
        if (_candidate is not { } c) return Task.FromResult<string?>(null);
        bool standing = c.Sleeps.All(s => _waits.TryGetValue(s.Cpu, out var w) && w.Token == s.Token);
        if (!standing)
        {
            DropCandidate();
            return Task.FromResult<string?>(null);
        }
        return Task.FromResult(c.Since.Elapsed >= Confirm ? c.Text : null);
    }

    /// <summary>
    /// The candidate broke: look again over every standing sleep. One-way messages arrive in any order, so another
    /// cycle may have formed while this one was the candidate, and its CPUs, being asleep, send nothing more that would
    /// start a search.
    /// </summary>
    private void DropCandidate()
    {
        _candidate = null;
        foreach (int cpu in _waits.Keys)
        {
            FindCycle(cpu);
            if (_candidate is not null) return;
        }
    }

    private void FindCycle(int start)
    {
        var path = new List<int> { start };
        var onPath = new HashSet<int> { start };
        if (Dfs(start, start, path, onPath))
        {
            var parts = new List<string>();
            for (int i = 0; i < path.Count; i++)
            {
                int cpu = path[i], next = path[(i + 1) % path.Count];
                parts.Add($"cpu{cpu} waits for {_waits[cpu].What} held by cpu{next}");
            }
            _candidate = (path.Select(c => (c, _waits[c].Token)).ToList(), "wait-for cycle: " + string.Join(" → ", parts), Stopwatch.StartNew());
        }
    }

    private bool Dfs(int cpu, int start, List<int> path, HashSet<int> onPath)
    {
        if (!_waits.TryGetValue(cpu, out var w) || path.Count > 64) return false;
        foreach (int h in w.Holders)
        {
            if (h == start) return true;
            if (!onPath.Add(h)) continue;
            path.Add(h);
            if (Dfs(h, start, path, onPath)) return true;
            path.RemoveAt(path.Count - 1);
            onPath.Remove(h);
        }
        return false;
    }
}
