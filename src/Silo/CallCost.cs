using System.Diagnostics;
using Orleans.Concurrency;

namespace DistEmu.Silo;

/// <summary>
/// A grain on the silo its key names (<see cref="SiloKeyPlacement"/>) that times round trips to the same kind of
/// grain on another silo, or on its own: the host cost of one cross-silo grain call against a local one, the third
/// factor of the scaling model (calls per fault × cross-silo fraction × cross-silo call cost). Not a
/// DistEmu.Abstractions interface, so its calls are not counted as the emulator's.
/// </summary>
public interface ICallCostGrain : IGrainWithStringKey
{
    /// <summary>Does nothing; interleaves, so a grain can time calls to itself.</summary>
    [AlwaysInterleave]
    Task Ping();

    /// <summary>Mean microseconds of one awaited <see cref="Ping"/> to the ping grain of <paramref name="silo"/>, over <paramref name="calls"/> calls in sequence.</summary>
    Task<double> TimePings(string silo, int calls);
}

[SiloKeyPlacement]
internal sealed class CallCostGrain : Grain, ICallCostGrain
{
    public Task Ping() => Task.CompletedTask;

    public async Task<double> TimePings(string silo, int calls)
    {
        var target = GrainFactory.GetGrain<ICallCostGrain>(silo);
        for (int i = 0; i < Math.Min(calls, 100); i++) await target.Ping(); // activation and connection warm-up, not timed
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < calls; i++) await target.Ping();
        return sw.Elapsed.TotalMicroseconds / calls;
    }
}

/// <summary>A measured grain-call cost: a round trip within one silo and, with two silos or more, across two.</summary>
public sealed record CallCost(double LocalMicros, double? CrossSiloMicros)
{
    /// <summary>What crossing adds to one call (cross − local), or null with one silo.</summary>
    public double? ExtraMicros => CrossSiloMicros is { } c ? Math.Max(0, c - LocalMicros) : null;

    /// <summary>
    /// Times <paramref name="calls"/> sequential pings from the first silo (by address) to itself and to the second, in
    /// <paramref name="rounds"/> alternating rounds, and keeps each one's median round (host noise lands in single rounds).
    /// </summary>
    public static async Task<CallCost> MeasureAsync(IGrainFactory grains, IReadOnlyList<string> silos, int calls = 2000, int rounds = 5)
    {
        if (silos.Count == 0) throw new ArgumentException("no silo to measure on", nameof(silos));
        var from = grains.GetGrain<ICallCostGrain>(silos[0]);
        var local = new List<double>();
        var cross = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            local.Add(await from.TimePings(silos[0], calls));
            if (silos.Count > 1) cross.Add(await from.TimePings(silos[1], calls));
        }
        static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
        return new CallCost(Median(local), cross.Count > 0 ? Median(cross) : null);
    }
}
