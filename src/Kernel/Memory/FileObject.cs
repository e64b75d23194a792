namespace DistEmu.Kernel.Memory;

/// <summary>
/// A file and its page cache (struct address_space, reduced): page index → frame. A tmpfs file has no backing
/// store, so a miss allocates and zeroes a page; a disk file's miss costs a read and is a major fault.
/// </summary>
public sealed class FileObject
{
    /// <summary>VM_READAHEAD_PAGES (include/linux/mm.h): the default read-ahead window of a block device, 128 KiB.</summary>
    public const long VmReadaheadBytes = 128 * 1024;

    public int Id { get; }
    public string Name { get; }
    public bool DiskBacked { get; }
    internal readonly Dictionary<long, long> Pages = new();

    /// <summary>file->f_ra.ra_pages in bytes (bdi->ra_pages at open); 0 = no read-ahead, as with MADV_RANDOM.</summary>
    public long ReadAheadBytes { get; set; } = VmReadaheadBytes;

    public FileObject(int id, string name, bool diskBacked)
    {
        Id = id;
        Name = name;
        DiskBacked = diskBacked;
    }

    public int CachedPages => Pages.Count;

    /// <summary>Is page <paramref name="pgoff"/> in the page cache?</summary>
    public bool IsCached(long pgoff) => Pages.ContainsKey(pgoff);
}
