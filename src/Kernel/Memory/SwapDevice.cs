namespace DistEmu.Kernel.Memory;

/// <summary>
/// A swap device: slot allocation and the swap cache of folios being read in (swap_cache / swapcache_prepare),
/// which is how a second fault on the same entry finds the first one's locked folio and waits for it.
/// </summary>
public sealed class SwapDevice
{
    private long _next;
    private readonly Stack<long> _free = new();
    internal readonly Dictionary<long, long> SwapCache = new();
    /// <summary>
    /// Slots whose entry was zapped while their swap-cache folio was locked (being read, or being mapped): the slot stays
    /// allocated (SWAP_HAS_CACHE) until the folio's holder drops it from the swap cache.
    /// </summary>
    internal readonly HashSet<long> Orphans = new();

    public long UsedSlots { get; private set; }

    public long AllocSlot()
    {
        UsedSlots++;
        return _free.Count > 0 ? _free.Pop() : _next++;
    }

    public void FreeSlot(long slot)
    {
        UsedSlots--;
        _free.Push(slot);
    }
}
