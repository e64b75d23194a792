using System.Diagnostics;
using Orleans.Runtime;

namespace DistEmu.Silo;

/// <summary>
/// The silos a run started on, as the cluster's membership table knows them. A run's grains are lost only when
/// membership declares their silo dead — never because a call was slow — so this is what decides that a run cannot go
/// on. Read through <see cref="IManagementGrain"/> (a stateless worker on whichever silo takes the call).
/// </summary>
public sealed class RunSilos
{
    /// <summary>How often the table is read while a run goes on.</summary>
    public static readonly TimeSpan Period = TimeSpan.FromSeconds(1);

    /// <summary>How long one read of the table may take before it is tried again (it says nothing of the run's grains).</summary>
    private static readonly TimeSpan ReadBound = TimeSpan.FromSeconds(10);

    private readonly IManagementGrain _management;
    private readonly HashSet<SiloAddress> _started;
    private readonly Stopwatch _sinceRead = Stopwatch.StartNew();
    private readonly List<string> _lost = new();

    private RunSilos(IManagementGrain management, HashSet<SiloAddress> started)
    {
        _management = management;
        _started = started;
    }

    /// <summary>The active silos now (the run's grains will be placed on them).</summary>
    public static async Task<RunSilos> Of(IGrainFactory grains)
    {
        var management = grains.GetGrain<IManagementGrain>(0);
        var hosts = await management.GetHosts(onlyActive: true);
        return new RunSilos(management, [.. hosts.Keys]);
    }

    /// <summary>Null while every silo the run started on is active, as last read; else which left, and their status.</summary>
    public string? Lost => _lost.Count == 0 ? null : string.Join("; ", _lost);

    /// <summary>
    /// Reads the table, at most once per <see cref="Period"/> unless <paramref name="now"/>; a read that fails or takes
    /// long is tried next time (it says nothing of the run's grains). Returns <see cref="Lost"/>.
    /// </summary>
    public async Task<string?> Refresh(bool now = false)
    {
        if (!now && _sinceRead.Elapsed < Period) return Lost;
        _sinceRead.Restart();
        Dictionary<SiloAddress, SiloStatus> hosts;
        try
        {
            hosts = await _management.GetHosts(onlyActive: false).WaitAsync(ReadBound);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Lost;
        }
        foreach (var silo in _started.ToList())
        {
            var status = hosts.GetValueOrDefault(silo, SiloStatus.None);
            if (status == SiloStatus.Active) continue;
            _started.Remove(silo);
            _lost.Add($"silo {silo.ToParsableString()} left the cluster during the run (membership: {(status == SiloStatus.None ? "no longer listed" : status.ToString())})");
        }
        return Lost;
    }

    /// <summary>
    /// Awaits a call to the run's grains while watching the table: if a silo of the run is declared dead meanwhile, the
    /// wait ends with <see cref="RunSiloLostException"/> (an external client's call through that silo's gateway would
    /// otherwise wait for its response timeout). However long the call takes, it is never abandoned for being slow.
    /// </summary>
    public async Task Watching(Task call)
    {
        int before = _lost.Count;
        while (await Task.WhenAny(call, Task.Delay(Period)) != call)
        {
            await Refresh();
            if (_lost.Count > before) throw new RunSiloLostException(Lost!);
        }
        await call;
    }

    /// <inheritdoc cref="Watching(Task)"/>
    public async Task<T> Watching<T>(Task<T> call)
    {
        await Watching((Task)call);
        return await call;
    }
}

/// <summary>A silo of the run left the cluster while a call to the run's grains was pending.</summary>
public sealed class RunSiloLostException(string message) : Exception(message);
