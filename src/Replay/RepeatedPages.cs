// Models what perf does not record, the kind of each fault, from what it does record: how often a page faults.
// In the kernel a read fault on a page of a writable private mapping maps it read-only (do_anonymous_page without
// FAULT_FLAG_WRITE maps the shared zero page; do_read_fault maps the page-cache folio), so the first write to that
// page faults again (do_wp_page: zero-page copy or COW). A page that faults twice within one mapping epoch, with no
// munmap/mprotect/mmap over it in between, was therefore read first and written second. The first pass of a replay
// records each page's faults per epoch here; the planning pass asks it which fault is the read.
namespace DistEmu.Replay;

/// <summary>
/// Pages (per mapping epoch) that fault more than once in a trace. Filled by a surveying pass (<see cref="Observe"/>),
/// then consumed by the planning pass (<see cref="TakeFirst"/>). Memory while surveying is an open-addressing table of
/// 8-byte keys, one per distinct page-epoch, at most 3/4 full (bounded by <see cref="Capacity"/>: 32 MiB by default);
/// after <see cref="Seal"/> only the repeated page-epochs are kept.
/// </summary>
public sealed class RepeatedPages
{
    /// <summary>Default number of distinct page-epochs tracked: 3 Mi (12 GiB of touched 4 KiB pages) in a 32 MiB table.</summary>
    public const int DefaultCapacity = 3 << 20;

    // Key = page number << EpochBits | epoch: exact for user page numbers below 2^35 (x86-64's 47-bit user half with
    // 4 KiB pages) and fewer than 2^29 mappings; anything else is untracked.
    private const int EpochBits = 29;
    private const ulong MaxPage = 1UL << (64 - EpochBits);
    private const long MaxEpoch = 1L << EpochBits;

    private KeySet? _seen = new();
    private readonly HashSet<ulong> _repeated = new();

    public RepeatedPages(int capacity = DefaultCapacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Capacity = capacity;
    }

    /// <summary>Most distinct page-epochs the survey remembers; faults on pages beyond it keep the mapping's rule.</summary>
    public int Capacity { get; }

    /// <summary>Page-epochs that faulted more than once.</summary>
    public long Repeated => _repeated.Count + ReadsTaken;

    /// <summary>Faults the survey could not track (over <see cref="Capacity"/>, or a page/epoch too large for a key).</summary>
    public long Untracked { get; private set; }

    /// <summary>First faults of repeated page-epochs handed out as reads so far.</summary>
    public long ReadsTaken { get; private set; }

    /// <summary>Survey: one fault on page number <paramref name="page"/> in mapping epoch <paramref name="epoch"/>.</summary>
    public void Observe(ulong page, long epoch)
    {
        var seen = _seen ?? throw new InvalidOperationException("the survey is sealed");
        if (!TryKey(page, epoch, out ulong key))
        {
            Untracked++;
            return;
        }

        if (seen.Contains(key))
        {
            _repeated.Add(key);
        }
        else if (seen.Count < Capacity)
        {
            seen.Add(key);
        }
        else
        {
            Untracked++;
        }
    }

    /// <summary>Ends the survey and frees the pages seen once.</summary>
    public void Seal()
    {
        _seen = null;
        _repeated.TrimExcess();
    }

    /// <summary>
    /// Planning: true exactly once per repeated page-epoch, for its first fault (the read); later faults of the page and
    /// pages that fault once get false.
    /// </summary>
    public bool TakeFirst(ulong page, long epoch)
    {
        if (TryKey(page, epoch, out ulong key) && _repeated.Remove(key))
        {
            ReadsTaken++;
            return true;
        }

        return false;
    }

    private static bool TryKey(ulong page, long epoch, out ulong key)
    {
        // Epochs start at 1 (the planner numbers mmaps from 1), so no key is 0, the table's empty slot.
        if (page >= MaxPage || epoch < 1 || epoch >= MaxEpoch)
        {
            key = 0;
            return false;
        }

        key = (page << EpochBits) | (ulong)epoch;
        return true;
    }

    /// <summary>
    /// Insert-only set of non-zero keys: linear probing in a power-of-two array, grown at 3/4 full. 8 bytes a slot
    /// against about 20 for a HashSet entry, since the survey holds every distinct page-epoch of the trace.
    /// </summary>
    private sealed class KeySet
    {
        private ulong[] _slots = new ulong[1024];

        public int Count { get; private set; }

        public bool Contains(ulong key)
        {
            int mask = _slots.Length - 1;
            for (int i = Slot(key, mask); ; i = (i + 1) & mask)
            {
                ulong k = _slots[i];
                if (k == key)
                {
                    return true;
                }

                if (k == 0)
                {
                    return false;
                }
            }
        }

        /// <summary>Adds a key known to be absent.</summary>
        public void Add(ulong key)
        {
            if ((Count + 1) * 4L > _slots.Length * 3L)
            {
                Grow();
            }

            Insert(_slots, key);
            Count++;
        }

        private void Grow()
        {
            var old = _slots;
            _slots = new ulong[old.Length * 2];
            foreach (ulong k in old)
            {
                if (k != 0)
                {
                    Insert(_slots, k);
                }
            }
        }

        private static void Insert(ulong[] slots, ulong key)
        {
            int mask = slots.Length - 1;
            int i = Slot(key, mask);
            while (slots[i] != 0)
            {
                i = (i + 1) & mask;
            }

            slots[i] = key;
        }

        // Fibonacci hashing: page-epoch keys are clustered (consecutive pages differ in bit 29 up), so mix them.
        private static int Slot(ulong key, int mask) => (int)((key * 0x9E3779B97F4A7C15UL) >> 32) & mask;
    }
}
