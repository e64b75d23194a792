using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using Orleans.Metadata;

namespace DistEmu.Silo;

/// <summary>
/// The grains this silo holds, from the moment each one's context is made (before its activation runs, so a call it
/// makes while activating — a CPU grain reading its run's configuration — is known to come from here) until it is
/// deactivated. <see cref="GrainCallCounter"/> asks it whether a call's caller lives in this silo; Orleans' own
/// ILocalActivationStatusChecker answers no for a grain still activating.
/// </summary>
public sealed class LocalGrains : IConfigureGrainContextProvider, IConfigureGrainContext
{
    private readonly ConcurrentDictionary<GrainId, byte> _ids = new();

    public bool Contains(GrainId id) => _ids.ContainsKey(id);

    /// <summary>The emulator's own grains (Orleans' system grains, whose contexts may have no lifecycle, are never its callers).</summary>
    public bool TryGetConfigurator(GrainType grainType, GrainProperties properties, [NotNullWhen(true)] out IConfigureGrainContext? configurator)
    {
        bool ours = properties.Properties.TryGetValue(WellKnownGrainTypeProperties.FullTypeName, out var name)
            && name.StartsWith("DistEmu.", StringComparison.Ordinal);
        configurator = ours ? this : null;
        return ours;
    }

    public void Configure(IGrainContext context)
    {
        var id = context.GrainId;
        _ids.TryAdd(id, 0);
        context.ObservableLifecycle.Subscribe(nameof(LocalGrains), GrainLifecycleStage.First, _ => Task.CompletedTask, stopping =>
        {
            _ids.TryRemove(id, out _);
            return Task.CompletedTask;
        });
    }
}
