using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Memory;

namespace DistEmu.Kernel.Mm;

[Flags]
public enum VmFlags : byte
{
    None = 0,
    Read = 1,
    Write = 2,
    Exec = 4,
    /// <summary>MAP_SHARED (VM_SHARED): writes go to the file's pages, no COW.</summary>
    Shared = 8,
    /// <summary>VM_HUGEPAGE: madvise(MADV_HUGEPAGE) was applied; under transparent_hugepage=madvise only these VMAs get THPs.</summary>
    HugePage = 16,
    /// <summary>VM_NOHUGEPAGE: madvise(MADV_NOHUGEPAGE) was applied; never a THP, whatever the machine's mode.</summary>
    NoHugePage = 32,
}

/// <summary>
/// struct vm_area_struct: bounds, flags, anonymous or file-backed, anon_vma present, the per-VMA lock state
/// (vm_lock, vm_lock_seq starting at -1, detached). Its entries live in the mm's page table.
/// Bounds and flags change only while it is write-locked (S4).
/// </summary>
public sealed class Vma
{
    public int Id { get; }
    public MmStruct Mm { get; }
    public long Start { get; internal set; }
    public long End { get; internal set; }
    public VmFlags Flags { get; internal set; }
    public FileObject? File { get; }
    /// <summary>File page index of <see cref="Start"/> (vm_pgoff).</summary>
    public long PgOff { get; internal set; }
    /// <summary>vma->anon_vma != NULL. Set once, by the first anonymous fault under mmap_lock (anon_vma_prepare).</summary>
    public bool HasAnonVma { get; internal set; }
    public long VmLockSeq { get; internal set; } = -1;
    public bool Detached { get; internal set; }
    /// <summary>§8.2's bug only: the flags when this write section write-locked the VMA (null: not write-locked in it).</summary>
    internal VmFlags? FlagsAtWriteLock;
    /// <summary>§8.2's bug only: the flags before the last write section, visible to readers until <see cref="StaleUntil"/>.</summary>
    internal VmFlags StaleFlags;
    internal long StaleUntil = -1;
    public RwSemaphore VmLock { get; }
    /// <summary>The page table of the mm this VMA maps into (entries of its range live there).</summary>
    public PageTable PageTable => Mm.PageTable;

    public Vma(EmuMachine m, int id, MmStruct mm, long start, long end, VmFlags flags, FileObject? file, long pgoff)
    {
        Id = id;
        Mm = mm;
        Start = start;
        End = end;
        Flags = flags;
        File = file;
        PgOff = pgoff;
        VmLock = new RwSemaphore(m, LockClass.VmaLock, $"vma{id}");
    }

    public bool IsAnonymous => File is null;
    public bool Contains(long addr) => addr >= Start && addr < End;
    public bool IsWriteLocked => VmLockSeq == Mm.MmLockSeq;
    public long Length => End - Start;

    public override string ToString() => $"vma{Id} [0x{Start:x}-0x{End:x}) {FlagString()}{(File is null ? " anon" : " " + File.Name)}";

    public string FlagString() => FlagString(Flags);

    /// <summary>Flags as /proc/PID/maps shows them: rwxp / rw-s …</summary>
    public static string FlagString(VmFlags flags) =>
        $"{((flags & VmFlags.Read) != 0 ? 'r' : '-')}{((flags & VmFlags.Write) != 0 ? 'w' : '-')}" +
        $"{((flags & VmFlags.Exec) != 0 ? 'x' : '-')}{((flags & VmFlags.Shared) != 0 ? 's' : 'p')}";
}
