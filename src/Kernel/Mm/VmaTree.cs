namespace DistEmu.Kernel.Mm;

/// <summary>
/// The VMA tree as an immutable, versioned interval map [vm_start, vm_end) → VMA. Writers publish a new version;
/// readers use whatever version they loaded, without locks — RCU's view: a reader can hold a VMA that a writer has
/// just detached, and must validate it after locking (lock_vma_under_rcu).
/// </summary>
public sealed class VmaTree
{
    private readonly long[] _starts;
    private readonly long[] _ends;
    private readonly Vma[] _vmas;

    public long Version { get; }
    public static VmaTree Empty { get; } = new([], [], [], 0);

    private VmaTree(long[] starts, long[] ends, Vma[] vmas, long version)
    {
        _starts = starts;
        _ends = ends;
        _vmas = vmas;
        Version = version;
    }

    public int Count => _vmas.Length;
    public IReadOnlyList<Vma> Vmas => _vmas;

    /// <summary>mas_walk: the VMA whose range, as recorded in this version, covers <paramref name="addr"/>.</summary>
    public Vma? Find(long addr)
    {
        int lo = 0, hi = _starts.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_starts[mid] <= addr)
            {
                if (addr < _ends[mid]) return _vmas[mid];
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return null;
    }

    /// <summary>VMAs whose recorded range overlaps [start, end), in address order.</summary>
    public List<Vma> Overlapping(long start, long end)
    {
        var list = new List<Vma>();
        for (int i = 0; i < _vmas.Length; i++)
            if (_starts[i] < end && _ends[i] > start)
                list.Add(_vmas[i]);
        return list;
    }

    /// <summary>A new version in which <paramref name="remove"/> are gone and <paramref name="add"/> are present, at their current bounds.</summary>
    public VmaTree With(IEnumerable<Vma> remove, IEnumerable<Vma> add)
    {
        var set = new List<Vma>(_vmas);
        foreach (var r in remove) set.Remove(r);
        foreach (var a in add) if (!set.Contains(a)) set.Add(a);
        set.Sort((x, y) => x.Start.CompareTo(y.Start));
        for (int i = 1; i < set.Count; i++)
            if (set[i].Start < set[i - 1].End)
                throw new InvalidOperationException($"overlapping VMAs in tree: {set[i - 1]} and {set[i]}");
        return new VmaTree(set.Select(v => v.Start).ToArray(), set.Select(v => v.End).ToArray(), set.ToArray(), Version + 1);
    }
}
