// Models the replayer's own view of the traced address space: the set of user mappings the trace has
// created so far (MMAP2 lines plus inferred heap/stack growth), non-overlapping and sorted, where a new
// mapping replaces whatever it overlaps, as mmap(MAP_FIXED) does. Its size is bounded by the number of
// mappings, never by the number of faults.
namespace DistEmu.Replay;

/// <summary>One mapped range [Start, End) with its protection and backing.</summary>
public readonly record struct MappedRegion(ulong Start, ulong End, PerfProtection Protection, PerfMappingKind Kind, string Name, ulong PageOffset)
{
    /// <summary>
    /// Which mmap made it (the planner numbers them): a page's mapping epoch. A new mapping over a page starts a new
    /// epoch; the pieces of a region a new mapping cut keep theirs (those pages were not remapped).
    /// </summary>
    public long Epoch { get; init; }

    public bool Contains(ulong address) => address >= Start && address < End;

    public bool IsWritable => (Protection & PerfProtection.Write) != 0;

    /// <summary>No read, write or exec permission: any access is SIGSEGV.</summary>
    public bool IsProtNone => (Protection & (PerfProtection.Read | PerfProtection.Write | PerfProtection.Exec)) == 0;

    /// <summary>The part of this region in [start, end); file offsets follow the cut.</summary>
    public MappedRegion Slice(ulong start, ulong end) =>
        this with { Start = start, End = end, PageOffset = Kind == PerfMappingKind.File ? PageOffset + (start - Start) : PageOffset };
}

/// <summary>Sorted, non-overlapping regions; <see cref="Map"/> replaces overlaps.</summary>
public sealed class MappingSet
{
    private readonly List<MappedRegion> _regions = new();

    public int Count => _regions.Count;

    public IReadOnlyList<MappedRegion> Regions => _regions;

    /// <summary>The region containing <paramref name="address"/>, if any.</summary>
    public bool TryFind(ulong address, out MappedRegion region)
    {
        int i = IndexAtOrBefore(address);
        if (i >= 0 && _regions[i].Contains(address))
        {
            region = _regions[i];
            return true;
        }

        region = default;
        return false;
    }

    /// <summary>True if any region intersects [start, end).</summary>
    public bool Overlaps(ulong start, ulong end)
    {
        if (start >= end)
        {
            return false;
        }

        int i = IndexAtOrBefore(start);
        if (i >= 0 && _regions[i].End > start)
        {
            return true;
        }

        return i + 1 < _regions.Count && _regions[i + 1].Start < end;
    }

    /// <summary>The lowest region starting at or above <paramref name="address"/>, if any.</summary>
    public bool TryFindFirstAtOrAbove(ulong address, out MappedRegion region)
    {
        int i = IndexAtOrBefore(address);
        if (i >= 0 && _regions[i].Start == address)
        {
            region = _regions[i];
            return true;
        }

        if (i + 1 < _regions.Count)
        {
            region = _regions[i + 1];
            return true;
        }

        region = default;
        return false;
    }

    /// <summary>Inserts <paramref name="region"/>, cutting away whatever it overlaps.</summary>
    public void Map(MappedRegion region)
    {
        if (region.Start >= region.End)
        {
            return;
        }

        int i = IndexAtOrBefore(region.Start);
        if (i < 0 || _regions[i].End <= region.Start)
        {
            i++;
        }

        // i is the first region that might overlap; collect the overlapped ones and their surviving edges.
        int first = i;
        var keep = new List<MappedRegion>(2);
        while (i < _regions.Count && _regions[i].Start < region.End)
        {
            var old = _regions[i];
            if (old.Start < region.Start)
            {
                keep.Add(old.Slice(old.Start, region.Start));
            }

            if (old.End > region.End)
            {
                keep.Add(old.Slice(region.End, old.End));
            }

            i++;
        }

        _regions.RemoveRange(first, i - first);
        keep.Add(region);
        keep.Sort((a, b) => a.Start.CompareTo(b.Start));
        _regions.InsertRange(first, keep);
    }

    /// <summary>Index of the last region with Start &lt;= address, or -1.</summary>
    private int IndexAtOrBefore(ulong address)
    {
        int lo = 0;
        int hi = _regions.Count - 1;
        int found = -1;
        while (lo <= hi)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (_regions[mid].Start <= address)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return found;
    }
}
