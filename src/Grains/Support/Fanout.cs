namespace DistEmu.Grains.Support;

/// <summary>
/// Calls to many grains with a bounded number in flight: enough to overlap the round trips, few enough that one grain
/// does not put thousands of requests (and activations) on a silo in one step, where they would queue past the
/// response timeout.
/// </summary>
public static class Fanout
{
    /// <summary>Calls in flight at most, per caller.</summary>
    public const int Width = 64;

    /// <summary>
    /// <paramref name="call"/> on every item, at most <paramref name="width"/> at a time; completes when all have (and
    /// fails with the first failure once all have ended).
    /// </summary>
    public static Task ForEach<T>(IReadOnlyList<T> items, Func<T, Task> call, int width = Width)
    {
        int next = -1;
        async Task Worker()
        {
            for (int i; (i = Interlocked.Increment(ref next)) < items.Count;)
                await call(items[i]);
        }
        return Task.WhenAll(Enumerable.Range(0, Math.Min(width, items.Count)).Select(_ => Worker()));
    }
}
