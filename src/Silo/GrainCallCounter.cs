namespace DistEmu.Silo;

/// <summary>
/// Counts the grain calls this silo receives (the emulator's messages: faults, walks, syscalls, shootdowns), so a
/// run can report messages per fault. One per silo, registered as a singleton.
/// </summary>
public sealed class GrainCallCounter : IIncomingGrainCallFilter
{
    private long _calls;

    public long Calls => Interlocked.Read(ref _calls);

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod?.DeclaringType?.Namespace == "DistEmu.Abstractions")
            Interlocked.Increment(ref _calls);
        return context.Invoke();
    }
}
