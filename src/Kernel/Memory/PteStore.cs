namespace DistEmu.Kernel.Memory;

/// <summary>
/// The entries of one page-table page (the 512 ptes a pmd points to). The kernel always has the full 4 KiB page;
/// the emulator pays for it only when the page is well filled. Until <see cref="SparseMax"/> entries are set it keeps
/// just those, in one sorted array whose elements are the entry with its index packed into the top bits (8 bytes per
/// entry, no second array); the entry that goes past that converts the page to the plain 512-entry array, which it
/// keeps until the page is empty again. Both forms read and write the same values: storage never changes semantics.
/// </summary>
public struct PteStore
{
    public const int Entries = 512;

    /// <summary>
    /// Most entries kept in sparse form: 256 × 8 bytes is half the dense array, the point past which the list would
    /// save little while its inserts and binary searches keep growing.
    /// </summary>
    public const int SparseMax = 256;

    /// <summary>The index goes in bits 54–62 (the sign bit stays clear, so sorting the packed values sorts by index).</summary>
    private const int IndexShift = 54;

    /// <summary>Bits an entry may use: a payload (frame or swap slot) below 2^46 and the low byte of flags.</summary>
    public const long EntryMask = (1L << IndexShift) - 1;

    private long[]? _dense;
    private long[]? _sparse;

    public static PteStore Empty => default;

    /// <summary>Entries that are not pte_none.</summary>
    public int Used { get; private set; }

    public readonly bool IsDense => _dense != null;

    /// <summary>The entry at <paramref name="i"/>; <see cref="Pte.None"/> if it was never set or was cleared.</summary>
    public readonly long Get(int i)
    {
        if (_dense != null)
            return _dense[i];
        int at = Find(i);
        return at >= 0 ? _sparse![at] & EntryMask : Pte.None;
    }

    /// <summary>Set entry <paramref name="i"/> to <paramref name="value"/> (<see cref="Pte.None"/> clears it).</summary>
    public void Set(int i, long value)
    {
        if ((uint)i >= Entries)
            throw new ArgumentOutOfRangeException(nameof(i), i, "a page-table page has 512 entries");
        if ((value & ~EntryMask) != 0)
            throw new ArgumentOutOfRangeException(nameof(value), value, $"entry {Pte.Describe(value)} does not fit the 54 bits a pte may use here");
        if (_dense != null)
        {
            SetDense(i, value);
            return;
        }
        int at = Find(i);
        if (at >= 0)
        {
            if (value != Pte.None)
                _sparse![at] = Pack(i, value);
            else
                RemoveAt(at);
        }
        else if (value != Pte.None)
        {
            if (Used == SparseMax)
                ToDense();
            if (_dense != null)
                SetDense(i, value);
            else
                InsertAt(~at, Pack(i, value));
        }
    }

    private void SetDense(int i, long value)
    {
        bool wasNone = _dense![i] == Pte.None;
        _dense[i] = value;
        if (wasNone && value != Pte.None) Used++;
        else if (!wasNone && value == Pte.None && --Used == 0) _dense = null; // empty again: back to the sparse form
    }

    private static long Pack(int i, long value) => ((long)i << IndexShift) | value;

    /// <summary>Position of index <paramref name="i"/> in the sparse list, or the complement of where it would go.</summary>
    private readonly int Find(int i)
    {
        var s = _sparse;
        int lo = 0, hi = Used - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            int k = (int)(s![mid] >>> IndexShift);
            if (k == i) return mid;
            if (k < i) lo = mid + 1;
            else hi = mid - 1;
        }
        return ~lo;
    }

    private void InsertAt(int at, long packed)
    {
        if (_sparse == null || Used == _sparse.Length)
        {
            // Grow by half (not double) so a list carries little slack; never past SparseMax.
            int capacity = _sparse == null ? 4 : Math.Min(SparseMax, _sparse.Length + Math.Max(4, _sparse.Length / 2));
            var grown = new long[capacity];
            if (_sparse != null)
            {
                Array.Copy(_sparse, grown, at);
                Array.Copy(_sparse, at, grown, at + 1, Used - at);
            }
            _sparse = grown;
        }
        else
        {
            Array.Copy(_sparse, at, _sparse, at + 1, Used - at);
        }
        _sparse[at] = packed;
        Used++;
    }

    private void RemoveAt(int at)
    {
        Array.Copy(_sparse!, at + 1, _sparse!, at, Used - at - 1);
        Used--;
        if (Used == 0)
            _sparse = null;
    }

    private void ToDense()
    {
        var dense = new long[Entries];
        for (int j = 0; j < Used; j++)
            dense[(int)(_sparse![j] >>> IndexShift)] = _sparse[j] & EntryMask;
        _dense = dense;
        _sparse = null;
    }
}
