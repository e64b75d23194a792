namespace DistEmu.Silo;

/// <summary>
/// Counts the grain calls this silo receives (the emulator's messages: faults, walks, syscalls, shootdowns), so a
/// run can report messages per fault, and of those the calls sent from another silo (<see cref="CrossSilo"/>: under
/// NUMA placement, cross-node traffic). A call comes from another silo when its caller is a grain this silo does not
/// hold (<see cref="LocalGrains"/>); calls from outside any silo (a cluster client) count as local. Only the receiving side looks:
/// stamping the sender into every call's RequestContext (an outgoing filter) cost a dictionary per message, copied
/// on local calls and serialized on remote ones, and halved a two-silo run's throughput.
/// One per silo, registered as a singleton.
/// </summary>
public sealed class GrainCallCounter(LocalGrains local) : IIncomingGrainCallFilter
{
    private long _calls;
    private long _crossSilo;

    public long Calls => Interlocked.Read(ref _calls);

    /// <summary>Of <see cref="Calls"/>, those sent from another silo.</summary>
    public long CrossSilo => Interlocked.Read(ref _crossSilo);

    private static bool Counted(IGrainCallContext context) => context.InterfaceMethod?.DeclaringType?.Namespace == "DistEmu.Abstractions";

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (Counted(context))
        {
            Interlocked.Increment(ref _calls);
            if (context.SourceId is { } source && !source.IsClient() && !local.Contains(source))
                Interlocked.Increment(ref _crossSilo);
        }
        return context.Invoke();
    }
}
