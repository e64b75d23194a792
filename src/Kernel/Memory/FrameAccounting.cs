namespace DistEmu.Kernel.Memory;

/// <summary>
/// Where every frame is: free on its node, on a per-CPU list, mapped by an anonymous entry (present, protnone,
/// migration source, or swap-cache during I/O), in a file's page cache, or in flight (a migration's destination
/// during the copy, a source waiting to be freed). The sum never changes: the conservation check.
/// </summary>
public sealed class FrameAccounting
{
    public long Total;
    public long Free;
    public long Pcp;
    public long Anon;
    public long PageCache;
    public long InFlight;

    public long Sum => Free + Pcp + Anon + PageCache + InFlight;
    public bool Conserved => Sum == Total && Free >= 0 && Pcp >= 0 && Anon >= 0 && PageCache >= 0 && InFlight >= 0;

    public override string ToString() =>
        $"total={Total} free={Free} pcp={Pcp} anon={Anon} pagecache={PageCache} inflight={InFlight} (sum {Sum})";
}
