namespace DistEmu.Silo;

/// <summary>
/// Counts the grain calls this silo receives (the emulator's messages: faults, walks, syscalls, shootdowns), so a
/// run can report messages per fault, and of those the calls sent from another silo (<see cref="CrossSilo"/>: under
/// NUMA placement, cross-node traffic). The sending silo stamps its address into the call's RequestContext (the
/// outgoing side of this filter); the receiving one compares it with its own. Calls from outside any silo (a cluster
/// client) carry no stamp and count as local. One per silo, registered as a singleton.
/// </summary>
public sealed class GrainCallCounter(ILocalSiloDetails silo) : IIncomingGrainCallFilter, IOutgoingGrainCallFilter
{
    /// <summary>The RequestContext key of the sending silo's address.</summary>
    public const string SenderKey = "distemu.from";

    private readonly string _self = silo.SiloAddress.ToParsableString();
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
            if (RequestContext.Get(SenderKey) is string from && !string.Equals(from, _self, StringComparison.Ordinal))
                Interlocked.Increment(ref _crossSilo);
        }
        return context.Invoke();
    }

    public Task Invoke(IOutgoingGrainCallContext context)
    {
        if (Counted(context))
            RequestContext.Set(SenderKey, _self);
        return context.Invoke();
    }
}
