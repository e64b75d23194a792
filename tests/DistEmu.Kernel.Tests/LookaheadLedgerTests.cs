using DistEmu.Kernel.Sched;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The orleans engine's lookahead rules (LookaheadLedger, RunClaim): a CPU may run past the quantum only while no other
/// CPU's claim meets its own, and only up to the least end of any CPU.
/// </summary>
public sealed class LookaheadLedgerTests
{
    private const long Pmd = 2 << 20;

    private static RunClaim Range(long lo, long hi, params int[] files) => new(lo, hi, files, true);

    private static long GrantOf(LookaheadLedger l, int node, int cpu, long heldVersion)
    {
        foreach (var (c, v) in l.ClearedOf(node))
            if (c == cpu) return LookaheadLedger.Grant(l.Bound, v, heldVersion);
        return long.MinValue;
    }

    [Fact]
    public void Disjoint_claims_are_cleared_up_to_the_least_end_of_any_cpu()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, Pmd));
        l.Claim(1, 1, 1, Range(4 * Pmd, 5 * Pmd));
        l.NodeEnd(0, 9_000);
        l.NodeEnd(1, 7_000);
        Assert.Equal(7_000, GrantOf(l, 0, 0, 1));
        Assert.Equal(7_000, GrantOf(l, 1, 1, 1));
    }

    [Fact]
    public void A_cpu_is_never_granted_past_the_quantum_while_its_claim_meets_another()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, 2 * Pmd));
        l.Claim(0, 1, 1, Range(Pmd, 3 * Pmd)); // shares the second page-table page
        l.Claim(1, 2, 1, Range(8 * Pmd, 9 * Pmd));
        l.NodeEnd(0, 5_000);
        l.NodeEnd(1, 5_000);
        Assert.Equal(long.MinValue, GrantOf(l, 0, 0, 1));
        Assert.Equal(long.MinValue, GrantOf(l, 0, 1, 1));
        Assert.Equal(5_000, GrantOf(l, 1, 2, 1));
        // A claim nested inside another meets it too (the sweep must not look only at neighbours).
        l.Claim(1, 3, 1, Range(8 * Pmd + 4096, 8 * Pmd + 8192));
        Assert.Equal(long.MinValue, GrantOf(l, 1, 2, 1));
        Assert.Equal(long.MinValue, GrantOf(l, 1, 3, 1));
    }

    [Fact]
    public void Claims_on_one_file_meet_in_its_page_cache_wherever_they_lie()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, Pmd, 7));
        l.Claim(1, 1, 1, Range(10 * Pmd, 11 * Pmd, 7));
        l.NodeEnd(0, 1_000);
        l.NodeEnd(1, 1_000);
        Assert.Empty(l.ClearedOf(0));
        Assert.Empty(l.ClearedOf(1));
    }

    [Fact]
    public void A_claim_on_shared_anonymous_memory_is_never_cleared()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, new RunClaim(0, Pmd, [], Eligible: false));
        l.NodeEnd(0, 1_000);
        Assert.Empty(l.ClearedOf(0));
    }

    [Fact]
    public void A_clearance_covers_only_the_claim_version_it_was_given_for()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, Pmd));
        l.NodeEnd(0, 3_000);
        Assert.Equal(3_000, GrantOf(l, 0, 0, 1));
        // The CPU moved on to claim 2 before the ledger saw it: clearance 1 does not cover it.
        Assert.Equal(long.MinValue, GrantOf(l, 0, 0, 2));
    }

    [Fact]
    public void After_a_tainting_op_nobody_is_cleared()
    {
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, Pmd));
        l.NodeEnd(0, 3_000);
        l.Taint();
        Assert.Empty(l.ClearedOf(0));
        Assert.Equal(long.MinValue, l.Bound);
    }

    [Fact]
    public void A_cpu_outside_a_run_holds_every_grant_to_its_clock()
    {
        // CPU 1 is in a system call at 2,000 ns (no claim; its node's least end is its clock): CPU 0 may run only to there.
        var l = new LookaheadLedger();
        l.Claim(0, 0, 1, Range(0, Pmd));
        l.Claim(1, 1, 1, null);
        l.NodeEnd(0, 50_000);
        l.NodeEnd(1, 2_000);
        Assert.Equal(2_000, GrantOf(l, 0, 0, 1));
    }

    [Fact]
    public void Widen_takes_whole_vmas_and_whole_page_table_pages_and_their_files()
    {
        var vmas = new[]
        {
            new RunClaim.VmaRange(3 * Pmd + 4096, 5 * Pmd - 4096, File: -1, SharedAnon: false),
            new RunClaim.VmaRange(6 * Pmd, 7 * Pmd, File: 4, SharedAnon: false),
            new RunClaim.VmaRange(9 * Pmd, 10 * Pmd, File: -1, SharedAnon: true),
        };
        var c = RunClaim.Widen(4 * Pmd, 6 * Pmd + 10, Pmd, vmas);
        Assert.Equal((3 * Pmd, 7 * Pmd), (c.Lo, c.Hi));
        Assert.Equal([4], c.Files);
        Assert.True(c.Eligible);
        Assert.False(RunClaim.Widen(9 * Pmd, 9 * Pmd, Pmd, vmas).Eligible);
        Assert.True(RunClaim.Widen(1, 0, Pmd, vmas).IsEmpty);
    }
}
