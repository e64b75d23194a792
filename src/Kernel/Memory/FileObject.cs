namespace DistEmu.Kernel.Memory;

/// <summary>
/// A file and its page cache (struct address_space, reduced): page index → frame. A tmpfs file has no backing
/// store, so a miss allocates and zeroes a page; a disk file's miss costs a read and is a major fault.
/// </summary>
public sealed class FileObject
{
    public int Id { get; }
    public string Name { get; }
    public bool DiskBacked { get; }
    internal readonly Dictionary<long, long> Pages = new();

    public FileObject(int id, string name, bool diskBacked)
    {
        Id = id;
        Name = name;
        DiskBacked = diskBacked;
    }

    public int CachedPages => Pages.Count;
}
