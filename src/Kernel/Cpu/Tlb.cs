using DistEmu.Kernel.Memory;

namespace DistEmu.Kernel.Cpu;

/// <summary>
/// A CPU's software TLB: a direct-mapped cache of translations (virtual page → the entry it was filled from).
/// An access that hits costs no protocol step (and, under the orleans engine, no message). Shootdowns invalidate it.
/// </summary>
public sealed class Tlb
{
    public const int Size = 512;
    private readonly long[] _tags = new long[Size];
    private readonly long[] _ptes = new long[Size];
    public long Hits;
    public long Misses;

    /// <summary>The cached entry for virtual page <paramref name="vpn"/>, or pte_none.</summary>
    public long Lookup(long vpn)
    {
        int i = (int)(vpn & (Size - 1));
        if (_tags[i] == vpn + 1)
        {
            Hits++;
            return _ptes[i];
        }
        Misses++;
        return Pte.None;
    }

    /// <summary>Whether <paramref name="vpn"/> has a translation here (a look without counting a hit or a miss).</summary>
    public bool Holds(long vpn) => _tags[(int)(vpn & (Size - 1))] == vpn + 1;

    public void Fill(long vpn, long pte)
    {
        int i = (int)(vpn & (Size - 1));
        _tags[i] = vpn + 1;
        _ptes[i] = pte;
    }

    /// <summary>flush_tlb_range on this CPU: drop every translation of [startVpn, endVpn).</summary>
    public void InvalidateRange(long startVpn, long endVpn)
    {
        if (endVpn - startVpn <= Size)
        {
            for (long v = startVpn; v < endVpn; v++)
            {
                int i = (int)(v & (Size - 1));
                if (_tags[i] == v + 1) _tags[i] = 0;
            }
            return;
        }
        for (int i = 0; i < Size; i++)
        {
            long v = _tags[i] - 1;
            if (_tags[i] != 0 && v >= startVpn && v < endVpn) _tags[i] = 0;
        }
    }

    public void FlushAll() => Array.Clear(_tags);
}
