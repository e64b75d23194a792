using Orleans;
using Orleans.Concurrency;

namespace DistEmu.Abstractions;

/// <summary>
/// The machine-wide wait-for graph (key: run id). Each grain's sanitizer sees only the locks of that grain; a cycle
/// that runs through several grains (a CPU holding mmap_lock in the mm grain and waiting for a VMA lock, whose holder
/// waits for mmap_lock) is found here, so an emulated deadlock is reported with its locks and CPUs instead of ending
/// as a call timeout.
/// </summary>
public interface IWaitGraphGrain : IGrainWithStringKey
{
    /// <summary>CPU <paramref name="cpu"/> sleeps (sleep <paramref name="token"/>) on <paramref name="what"/>, held by <paramref name="holders"/>.</summary>
    [OneWay] Task Wait(int cpu, long token, string what, int[] holders);
    /// <summary>That sleep ended (the two messages may arrive in either order).</summary>
    [OneWay] Task Woke(int cpu, long token);
    /// <summary>A cycle that has stood for a while (so it is not an artefact of messages in flight), described; else null.</summary>
    Task<string?> Deadlock();
}
