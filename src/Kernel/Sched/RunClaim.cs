namespace DistEmu.Kernel.Sched;

/// <summary>
/// What a task in a run of loads, stores and think time may touch before it can leave the run: its addresses widened to
/// whole VMAs and whole page-table pages (the VMA locks and PTLs a fault there takes), and the files those VMAs map
/// (their page caches and folios are shared by every mapping). Both engines' lookahead decide from it whether two tasks
/// can meet: the sim engine's run-ahead and the orleans engine's time keepers.
/// </summary>
/// <param name="Lo">Lowest address of the claim (inclusive).</param>
/// <param name="Hi">End of the claim (exclusive); Lo == Hi: the claim is empty (think time only) and overlaps nothing.</param>
/// <param name="Files">Ids of the files its VMAs map.</param>
/// <param name="Eligible">False if the run meets memory a task may not run ahead on (shared anonymous memory).</param>
public sealed record RunClaim(long Lo, long Hi, int[] Files, bool Eligible)
{
    public static readonly RunClaim None = new(0, 0, [], true);

    public bool IsEmpty => Lo == Hi;

    /// <summary>The two claims share an address range or a file: tasks holding them may take one lock or folio.</summary>
    public bool Meets(RunClaim other)
    {
        if (IsEmpty || other.IsEmpty) return false;
        if (Lo < other.Hi && other.Lo < Hi) return true;
        foreach (int f in Files)
            if (Array.IndexOf(other.Files, f) >= 0)
                return true;
        return false;
    }

    /// <summary>
    /// Which of <paramref name="claims"/> meet another of them: sorted by start, a claim's range meets another iff an
    /// earlier one ends past its start or the next one starts before its end; any two that map one file meet in its page
    /// cache wherever their ranges lie. Empty claims meet nothing. One sweep for both engines' lookahead.
    /// </summary>
    public static bool[] Meetings(IReadOnlyList<RunClaim> claims)
    {
        var meets = new bool[claims.Count];
        var order = Enumerable.Range(0, claims.Count).Where(i => !claims[i].IsEmpty).OrderBy(i => claims[i].Lo).ToList();
        long furthestEnd = long.MinValue;
        for (int k = 0; k < order.Count; k++)
        {
            var c = claims[order[k]];
            if (furthestEnd > c.Lo || (k + 1 < order.Count && claims[order[k + 1]].Lo < c.Hi))
                meets[order[k]] = true;
            furthestEnd = Math.Max(furthestEnd, c.Hi);
        }
        var fileOwner = new Dictionary<int, int>();
        foreach (int i in order)
            foreach (int f in claims[i].Files)
                if (fileOwner.TryGetValue(f, out int other))
                    meets[other] = meets[i] = true;
                else
                    fileOwner[f] = i;
        return meets;
    }

    /// <summary>Does the claim cover the raw address range [<paramref name="lo"/>, <paramref name="hi"/>] (inclusive)?</summary>
    public bool Covers(long lo, long hi) => lo > hi || (!IsEmpty && lo >= Lo && hi < Hi);

    /// <summary>A VMA as a claim sees it: its range, the file it maps (-1: anonymous) and whether it is shared anonymous memory.</summary>
    public readonly record struct VmaRange(long Start, long End, int File, bool SharedAnon);

    /// <summary>
    /// The claim for a run whose ops touch addresses [<paramref name="rawLo"/>, <paramref name="rawHi"/>] (inclusive;
    /// rawLo &gt; rawHi: none): widened to the <paramref name="vmas"/> that overlap it, then to whole page-table pages of
    /// <paramref name="pmdSize"/> bytes.
    /// </summary>
    public static RunClaim Widen(long rawLo, long rawHi, long pmdSize, IEnumerable<VmaRange> vmas)
    {
        if (rawLo > rawHi) return None;
        long lo = rawLo, hi = rawHi + 1;
        var files = new List<int>();
        bool eligible = true;
        foreach (var v in vmas)
        {
            if (v.End <= rawLo || v.Start > rawHi) continue;
            if (v.File >= 0)
            {
                if (!files.Contains(v.File)) files.Add(v.File);
            }
            else if (v.SharedAnon)
            {
                eligible = false;
            }
            lo = Math.Min(lo, v.Start);
            hi = Math.Max(hi, v.End);
        }
        return new RunClaim(lo / pmdSize * pmdSize, (hi + pmdSize - 1) / pmdSize * pmdSize, files.ToArray(), eligible);
    }
}
