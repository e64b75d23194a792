namespace DistEmu.Kernel.Memory;

/// <summary>The kinds of page-table entry PROTOCOL.md §1 names.</summary>
public enum PteKind : byte
{
    None = 0,
    Present = 1,
    /// <summary>NUMA hinting: mapped but inaccessible (pte_protnone), set by change_prot_numa.</summary>
    ProtNone = 2,
    Swap = 3,
    /// <summary>A swap-type entry pointing at the source frame of a folio under migration.</summary>
    Migration = 4,
}

/// <summary>
/// A page-table entry packed in a long (8 bytes per touched page): bits 0–2 the kind, bit 3 writable (for a
/// migration entry: was writable), bit 4 maps a page-cache page, bits 8 and up the frame number or swap slot. Zero is pte_none.
/// </summary>
public static class Pte
{
    public const long None = 0;
    /// <summary>The shared zero page a read fault on untouched anonymous memory maps (not a real frame).</summary>
    public const long ZeroFrame = (1L << 40) - 1;
    private const long WritableBit = 1 << 3;
    private const long FileBit = 1 << 4;

    public static PteKind Kind(long pte) => (PteKind)(pte & 7);
    public static bool IsWritable(long pte) => (pte & WritableBit) != 0;
    /// <summary>The entry maps a page-cache page (not an anonymous frame of its own).</summary>
    public static bool IsFile(long pte) => (pte & FileBit) != 0;
    public static long Payload(long pte) => (long)((ulong)pte >> 8);

    public static long Present(long frame, bool writable, bool file = false) =>
        (frame << 8) | (writable ? WritableBit : 0) | (file ? FileBit : 0) | (long)PteKind.Present;
    /// <summary>Same frame and flags, another kind (present ⇄ protnone).</summary>
    public static long WithKind(long pte, PteKind kind) => (pte & ~7L) | (long)kind;
    public static long WithWritable(long pte, bool writable) => writable ? pte | WritableBit : pte & ~WritableBit;
    public static long Swap(long slot) => (slot << 8) | (long)PteKind.Swap;
    public static long Migration(long srcFrame, bool writable) => (srcFrame << 8) | (writable ? WritableBit : 0) | (long)PteKind.Migration;

    /// <summary>Frame behind a present, protnone or migration entry.</summary>
    public static long Frame(long pte) => Payload(pte);

    public static string Describe(long pte) => Kind(pte) switch
    {
        PteKind.None => "none",
        PteKind.Present => Frame(pte) == ZeroFrame ? "present(zero page)" : $"present(frame {Frame(pte)}{(IsWritable(pte) ? ", rw" : ", ro")})",
        PteKind.ProtNone => $"protnone(frame {Frame(pte)})",
        PteKind.Swap => $"swap(slot {Payload(pte)})",
        PteKind.Migration => $"migration(frame {Frame(pte)})",
        _ => $"bad pte {pte:x}",
    };
}
