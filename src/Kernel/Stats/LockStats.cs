using DistEmu.Kernel.Locking;

namespace DistEmu.Kernel.Stats;

/// <summary>
/// The /proc/lock_stat columns for one lock class in one mode: acquisitions, contentions (acquisitions that had to
/// wait), wait time over contended acquisitions and hold time over all acquisitions, in emulated ns.
/// </summary>
public sealed class LockStatEntry
{
    public LockClass Class { get; }
    public LockMode Mode { get; }
    public long Acquisitions;
    public long Contentions;
    public NsHistogram Wait { get; } = new();
    public NsHistogram Hold { get; } = new();

    public LockStatEntry(LockClass @class, LockMode mode)
    {
        Class = @class;
        Mode = mode;
    }
}

/// <summary>All lock classes × modes of one machine.</summary>
public sealed class LockStats
{
    private readonly LockStatEntry[] _entries;

    public LockStats()
    {
        var classes = Enum.GetValues<LockClass>();
        _entries = new LockStatEntry[classes.Length * 2];
        foreach (var c in classes)
        {
            _entries[(int)c * 2] = new LockStatEntry(c, LockMode.Read);
            _entries[(int)c * 2 + 1] = new LockStatEntry(c, LockMode.Write);
        }
    }

    public LockStatEntry this[LockClass c, LockMode m] => _entries[(int)c * 2 + (int)m];
    public IReadOnlyList<LockStatEntry> Entries => _entries;
}
