using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;

namespace DistEmu.Kernel.Mm;

/// <summary>
/// One page-table page: 512 entries covering 512 pages (2 MiB with 4 KiB pages) and its split PTE lock (PTL).
/// munmap frees it; <see cref="Freed"/> stays set so a later dereference is caught as a use-after-free (S8).
/// Storage is the emulator's, not the kernel's: a page with few entries keeps only those (see <see cref="PteStore"/>),
/// so sparsely touched memory (a replayed trace) costs a few bytes per entry and densely touched memory the array.
/// </summary>
public sealed class PtePage
{
    public const int Entries = PteStore.Entries;
    private PteStore _store;

    public long Index { get; }
    public RwSemaphore Ptl { get; }
    public bool Freed { get; internal set; }
    /// <summary>Entries that are not pte_none.</summary>
    public int Used => _store.Used;
    /// <summary>Whether the entries are held as the full 512-entry array (else as a short sorted list).</summary>
    public bool IsDense => _store.IsDense;

    /// <summary>
    /// The pmd maps a THP (pmd_trans_huge, or a PMD migration entry): the head frame of the folio, else -1. The 512
    /// entries then hold the per-page view of that one PMD (present, protnone or migration, all of one kind) and are only
    /// ever changed together (see <see cref="HugeMemory"/>); the page's <see cref="Ptl"/> stands for pmd_lock.
    /// </summary>
    public long HugeHead { get; internal set; } = -1;
    public bool IsHuge => HugeHead >= 0;

    public PtePage(EmuMachine m, long index, string owner)
    {
        Index = index;
        Ptl = new RwSemaphore(m, LockClass.Ptl, $"{owner} pt{index}");
        _store = PteStore.Empty;
    }

    /// <summary>The entry at <paramref name="i"/> (0..511); pte_none if never set.</summary>
    public long this[int i] => _store.Get(i);

    internal void Set(int i, long value) => _store.Set(i, value);
}

/// <summary>
/// The PTE level of an mm's page tables: page-table pages allocated on first use (__pte_alloc), keyed by the
/// 2 MiB (512-page) region they map. As in the kernel, a page-table page may serve two adjacent VMAs, a VMA split
/// leaves entries where they are, and munmap frees only the pages no remaining VMA overlaps (free_pgtables).
/// </summary>
public sealed class PageTable
{
    private readonly EmuMachine _m;
    private readonly string _owner;
    private readonly Dictionary<long, PtePage> _pages = new();
    private readonly int _shift;

    public PageTable(EmuMachine m, string owner)
    {
        _m = m;
        _owner = owner;
        _shift = m.Spec.PageShift + 9;
    }

    public IEnumerable<PtePage> Pages => _pages.Values;
    public int PageCount => _pages.Count;

    /// <summary>
    /// The page-table page last found: a fault loop walks and faults in one 2 MiB region 512 times in a row, so most
    /// lookups are the last one again (the kernel's walk reads the pmd; this saves a hash lookup). Cleared when that
    /// page is freed.
    /// </summary>
    private PtePage? _last;

    /// <summary>pte_offset_map: the page-table page covering <paramref name="addr"/>, or null if none was allocated.</summary>
    public PtePage? Lookup(long addr)
    {
        long idx = addr >> _shift;
        if (_last is { } last && last.Index == idx)
            return last;
        var p = _pages.GetValueOrDefault(idx);
        if (p != null) _last = p;
        return p;
    }

    /// <summary>__pte_alloc: the page covering <paramref name="addr"/>, allocated if needed.</summary>
    public PtePage GetOrAlloc(long addr)
    {
        long idx = addr >> _shift;
        if (_last is { } last && last.Index == idx)
            return last;
        if (!_pages.TryGetValue(idx, out var p))
            _pages[idx] = p = new PtePage(_m, idx, _owner);
        return _last = p;
    }

    public int IndexOf(long addr) => (int)((addr >> _m.Spec.PageShift) & (PtePage.Entries - 1));

    /// <summary>The entry for <paramref name="addr"/> (pte_none if no page-table page).</summary>
    public long Read(long addr) => Lookup(addr) is { } p ? p[IndexOf(addr)] : Pte.None;

    /// <summary>set_pte_at / pte_clear: the caller holds the page's PTL (or owns the page table exclusively).</summary>
    internal void Set(PtePage p, int i, long value) => p.Set(i, value);

    /// <summary>Page-table pages overlapping [start, end).</summary>
    public List<PtePage> PagesIn(long start, long end)
    {
        var list = new List<PtePage>();
        if (end <= start) return list;
        long first = start >> _shift, last = (end - 1) >> _shift;
        if (last - first + 1 <= _pages.Count)
        {
            for (long i = first; i <= last; i++)
                if (_pages.TryGetValue(i, out var p)) list.Add(p);
        }
        else
        {
            foreach (var (k, p) in _pages)
                if (k >= first && k <= last) list.Add(p);
            list.Sort((a, b) => a.Index.CompareTo(b.Index));
        }
        return list;
    }

    /// <summary>First and one-past-last address mapped by a page-table page.</summary>
    public (long Start, long End) RangeOf(PtePage p) => (p.Index << _shift, (p.Index + 1) << _shift);

    /// <summary>
    /// free_pgtables: free the page-table pages overlapping [start, end) that no VMA of <paramref name="tree"/>
    /// overlaps any more (the floor/ceiling rule). A freed page is marked so a stale dereference is caught (S8).
    /// </summary>
    internal int FreeUnused(long start, long end, VmaTree tree)
    {
        int n = 0;
        foreach (var p in PagesIn(start, end))
        {
            var (s, e) = RangeOf(p);
            if (tree.Overlapping(s, e).Count > 0) continue;
            p.Freed = true;
            _pages.Remove(p.Index);
            if (ReferenceEquals(_last, p)) _last = null;
            n++;
        }
        return n;
    }
}
