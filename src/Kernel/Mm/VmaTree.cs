namespace DistEmu.Kernel.Mm;

/// <summary>
/// The VMA tree as an immutable, versioned interval map [vm_start, vm_end) → VMA. Writers publish a new version;
/// readers use whatever version they loaded, without locks — RCU's view: a reader can hold a VMA that a writer has
/// just detached, and must validate it after locking (lock_vma_under_rcu).
/// Like the maple tree's nodes, the map is stored in short sorted chunks under one index: a new version copies the
/// index and rebuilds only the chunks around the change, so a process with tens of thousands of mappings (a replayed
/// trace) pays per mmap for a few chunks, not for a copy of the whole tree.
/// </summary>
public sealed class VmaTree
{
    /// <summary>Most VMAs a rebuilt chunk gets (a run is cut into even pieces of at most this many).</summary>
    private const int ChunkFill = 48;

    /// <summary>One chunk: the VMAs of a stretch of the address space with their bounds as recorded in this version.</summary>
    private sealed class Chunk(long[] starts, long[] ends, Vma[] vmas)
    {
        public readonly long[] Starts = starts;
        public readonly long[] Ends = ends;
        public readonly Vma[] Vmas = vmas;
    }

    private readonly Chunk[] _chunks;
    /// <summary>Recorded start of each chunk's first VMA (chunks are never empty).</summary>
    private readonly long[] _firsts;
    private Vma[]? _flat;

    public long Version { get; }
    public static VmaTree Empty { get; } = new([], 0, 0);

    private VmaTree(Chunk[] chunks, int count, long version)
    {
        _chunks = chunks;
        _firsts = new long[chunks.Length];
        for (int i = 0; i < chunks.Length; i++)
            _firsts[i] = chunks[i].Starts[0];
        Count = count;
        Version = version;
    }

    public int Count { get; }

    /// <summary>Every VMA in address order (built on first use and kept: a version never changes).</summary>
    public IReadOnlyList<Vma> Vmas
    {
        get
        {
            if (_flat is null)
            {
                var flat = new Vma[Count];
                int n = 0;
                foreach (var c in _chunks)
                {
                    Array.Copy(c.Vmas, 0, flat, n, c.Vmas.Length);
                    n += c.Vmas.Length;
                }
                _flat = flat;
            }
            return _flat;
        }
    }

    /// <summary>mas_walk: the VMA whose range, as recorded in this version, covers <paramref name="addr"/>.</summary>
    public Vma? Find(long addr)
    {
        int c = ChunkAtOrBefore(addr);
        if (c < 0) return null;
        var chunk = _chunks[c];
        int i = LastStartAtOrBefore(chunk.Starts, addr);
        return addr < chunk.Ends[i] ? chunk.Vmas[i] : null;
    }

    /// <summary>VMAs whose recorded range overlaps [start, end), in address order.</summary>
    public List<Vma> Overlapping(long start, long end)
    {
        var list = new List<Vma>();
        for (int c = Math.Max(0, ChunkAtOrBefore(start)); c < _chunks.Length; c++)
        {
            var chunk = _chunks[c];
            if (chunk.Starts[0] >= end) break;
            for (int i = 0; i < chunk.Vmas.Length && chunk.Starts[i] < end; i++)
                if (chunk.Ends[i] > start)
                    list.Add(chunk.Vmas[i]);
        }
        return list;
    }

    /// <summary>
    /// A new version in which <paramref name="remove"/> are gone and <paramref name="add"/> are present, at their current
    /// bounds. The chunks rebuilt are those holding a removed VMA and those around each added one — which is where
    /// __split_vma shrank the original in place before publishing its new half — and every VMA of a rebuilt chunk is
    /// recorded at its current bounds.
    /// </summary>
    public VmaTree With(IReadOnlyCollection<Vma> remove, IReadOnlyCollection<Vma> add)
    {
        if (remove.Count == 0 && add.Count == 0)
            return new VmaTree(_chunks, Count, Version + 1);
        // Chunks [lo, hi] are rebuilt (an empty range, hi = lo - 1, when adding to an empty tree).
        int lo = int.MaxValue, hi = -1;
        foreach (var r in remove)
        {
            int c = ChunkHolding(r);
            if (c < 0) continue;
            lo = Math.Min(lo, c);
            hi = Math.Max(hi, c);
        }
        foreach (var a in add)
        {
            int c = ChunkAtOrBefore(a.Start);
            lo = Math.Min(lo, Math.Max(0, c - 1));
            hi = Math.Max(hi, Math.Min(_chunks.Length - 1, c + 1));
        }
        if (lo == int.MaxValue)
            return new VmaTree(_chunks, Count, Version + 1); // nothing to add, and none of the VMAs to remove is here
        var removed = remove.Count == 0 ? null : new HashSet<Vma>(remove, ReferenceEqualityComparer.Instance);
        var seen = new HashSet<Vma>(ReferenceEqualityComparer.Instance);
        var run = new List<Vma>();
        for (int c = lo; c <= hi; c++)
            foreach (var v in _chunks[c].Vmas)
                if ((removed is null || !removed.Contains(v)) && seen.Add(v))
                    run.Add(v);
        foreach (var a in add)
            if (seen.Add(a))
                run.Add(a);
        run.Sort((x, y) => x.Start.CompareTo(y.Start));

        int keepBefore = lo, keepAfter = _chunks.Length - 1 - hi;
        int pieces = (run.Count + ChunkFill - 1) / ChunkFill;
        var chunks = new Chunk[keepBefore + pieces + keepAfter];
        Array.Copy(_chunks, 0, chunks, 0, keepBefore);
        for (int p = 0, at = 0; p < pieces; p++)
        {
            int size = (run.Count - at) / (pieces - p);
            chunks[keepBefore + p] = Record(run, at, size);
            at += size;
        }
        Array.Copy(_chunks, _chunks.Length - keepAfter, chunks, keepBefore + pieces, keepAfter);
        int count = 0;
        foreach (var c in chunks) count += c.Vmas.Length;
        var tree = new VmaTree(chunks, count, Version + 1);
        tree.CheckDisjoint(Math.Max(0, keepBefore - 1), Math.Min(chunks.Length, keepBefore + pieces + 1));
        return tree;
    }

    private static Chunk Record(List<Vma> run, int from, int size)
    {
        var starts = new long[size];
        var ends = new long[size];
        var vmas = new Vma[size];
        run.CopyTo(from, vmas, 0, size);
        for (int i = 0; i < size; i++)
        {
            starts[i] = vmas[i].Start;
            ends[i] = vmas[i].End;
        }
        return new Chunk(starts, ends, vmas);
    }

    /// <summary>The tree's invariant over the chunks [from, to): recorded ranges are sorted and disjoint.</summary>
    private void CheckDisjoint(int from, int to)
    {
        Vma? prev = null;
        long prevEnd = long.MinValue;
        for (int c = from; c < to; c++)
        {
            var chunk = _chunks[c];
            for (int i = 0; i < chunk.Vmas.Length; i++)
            {
                if (chunk.Starts[i] < prevEnd)
                    throw new InvalidOperationException($"overlapping VMAs in tree: {prev} and {chunk.Vmas[i]}");
                prev = chunk.Vmas[i];
                prevEnd = chunk.Ends[i];
            }
        }
    }

    /// <summary>Index of the last chunk whose first recorded start is at or below <paramref name="addr"/>, or -1.</summary>
    private int ChunkAtOrBefore(long addr) => LastStartAtOrBefore(_firsts, addr);

    /// <summary>Chunk recording <paramref name="v"/> (found by its current start, else searched), or -1.</summary>
    private int ChunkHolding(Vma v)
    {
        int c = ChunkAtOrBefore(v.Start);
        for (int d = 0; d <= 1; d++)
        {
            int k = c + d;
            if (k >= 0 && k < _chunks.Length && Array.IndexOf(_chunks[k].Vmas, v) >= 0) return k;
        }
        for (int k = 0; k < _chunks.Length; k++)
            if (Array.IndexOf(_chunks[k].Vmas, v) >= 0) return k;
        return -1;
    }

    /// <summary>Index of the last element of the sorted <paramref name="starts"/> at or below <paramref name="addr"/>, or -1.</summary>
    private static int LastStartAtOrBefore(long[] starts, long addr)
    {
        int lo = 0, hi = starts.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (starts[mid] <= addr)
            {
                found = mid;
                lo = mid + 1;
            }
            else hi = mid - 1;
        }
        return found;
    }
}
