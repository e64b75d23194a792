using Orleans.Placement;
using Orleans.Runtime.Placement;

namespace DistEmu.Silo;

/// <summary>One silo's <see cref="GrainCallCounter"/> as read through the cluster.</summary>
[GenerateSerializer, Immutable]
public sealed record SiloCallCounts([property: Id(0)] string Silo, [property: Id(1)] long Calls, [property: Id(2)] long CrossSilo);

/// <summary>
/// Reads the grain-call counter of the silo named by the key (<see cref="SiloAddress.ToParsableString"/>), so that a
/// cluster client can sum the counters of every silo. Its own calls are not counted (not a DistEmu.Abstractions interface).
/// </summary>
public interface ISiloCounterGrain : IGrainWithStringKey
{
    Task<SiloCallCounts> Read();
}

/// <summary>Places a grain on the silo its key names (<see cref="SiloAddress.ToParsableString"/>).</summary>
[Serializable, GenerateSerializer, Immutable, SuppressReferenceTracking]
public sealed class SiloKeyPlacement : PlacementStrategy
{
    public static SiloKeyPlacement Singleton { get; } = new();
}

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class SiloKeyPlacementAttribute() : PlacementAttribute(SiloKeyPlacement.Singleton);

public sealed class SiloKeyPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string key = target.GrainIdentity.Key.ToString() ?? "";
        var silos = context.GetCompatibleSilos(target);
        foreach (var s in silos)
            if (string.Equals(s.ToParsableString(), key, StringComparison.Ordinal))
                return Task.FromResult(s);
        throw new OrleansException($"silo {key} is not an active silo of this cluster");
    }
}

[SiloKeyPlacement]
internal sealed class SiloCounterGrain(GrainCallCounter counter, ILocalSiloDetails local) : Grain, ISiloCounterGrain
{
    public Task<SiloCallCounts> Read() => Task.FromResult(new SiloCallCounts(local.SiloAddress.ToParsableString(), counter.Calls, counter.CrossSilo));
}
