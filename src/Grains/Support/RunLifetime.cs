namespace DistEmu.Grains.Support;

/// <summary>
/// How long a run's grains stay active. Orleans deactivates an activation that has been idle for its collection age
/// (15 min by default), and the state of a run's grain is its part of the results: the CPU grain of a task that
/// finished early, or a node whose CPUs are done, sits idle until the results are read. So every
/// grain whose state the results need holds itself active for <see cref="Hold"/> (Grain.DelayDeactivation) from its
/// activation, and lets go once its counters have been read; after that the normal collection age applies. An
/// unmapped VMA lets go at munmap instead: when Orleans collects it, it hands its counters to its mm (VmaGrain's
/// OnDeactivateAsync, IMmGrain.Retired), so a long run keeps no grain per mapping it ever made.
/// </summary>
public static class RunLifetime
{
    /// <summary>How long an idle grain of a run waits for its results to be read (a client gone mid-run leaves its grains this long).</summary>
    public static readonly TimeSpan Hold = TimeSpan.FromHours(24);

    /// <summary>Back to the silo's collection age (Grain.DelayDeactivation's "cancel").</summary>
    public static readonly TimeSpan Release = TimeSpan.Zero;
}
