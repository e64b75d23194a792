namespace DistEmu.Grains.Support;

/// <summary>
/// Calls to many grains with a bounded number in flight: collection and start-up reach thousands of grains, and one
/// grain asking them all at once floods its silo's queues (and, across silos, the network) in one step (DESIGN, "nothing
/// at scale goes through one point at once").
/// </summary>
public static class BoundedCalls
{
    /// <summary>How many calls one grain keeps in flight when it reads or starts many others.</summary>
    public const int InFlight = 32;

    /// <summary>Runs <paramref name="call"/> for each item, at most <paramref name="inFlight"/> at a time; returns when all have ended.</summary>
    public static async Task ForEach<T>(IReadOnlyList<T> items, Func<T, Task> call, int inFlight = InFlight)
    {
        int next = -1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < items.Count)
                await call(items[i]);
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Min(inFlight, items.Count)).Select(_ => Worker()));
    }
}
