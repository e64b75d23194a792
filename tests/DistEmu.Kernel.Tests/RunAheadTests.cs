using System.Text;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Stats;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Kernel.Tests;

/// <summary>
/// The sim engine's run-ahead (conservative lookahead) changes how often tasks wait their turn, never what happens:
/// every counter, lock statistic, histogram, frame count and sanitizer report is the exact engine's.
/// </summary>
public class RunAheadTests
{
    /// <summary>2 nodes × 4 CPUs, 1 GiB each: the small preset's shape (the LKML case's machine).</summary>
    private static MachineSpec Machine(FaultPolicy policy) => LkmlCase.Machine(policy);

    private static RunResult Run(MachineSpec m, string workload, bool runAhead, long ops, long seed = 3, Dictionary<string, string>? p = null) =>
        SimRun.Run(new SimRunOptions
        {
            Machine = m,
            Workload = workload,
            Params = p,
            Seed = seed,
            OpsPerTask = ops,
            RunAhead = runAhead,
        });

    /// <summary>
    /// Everything a run reports, and its event log's hash: every fault, lock hold, PTE write (with its frame) and
    /// migration, at the same emulated ns and in the same order on each task (EventLog hashes the history, not the
    /// host's interleaving of tasks).
    /// </summary>
    internal static string Results(RunResult r)
    {
        var m = r.Machine;
        var s = new StringBuilder();
        foreach (var f in typeof(VmStat).GetFields())
            s.Append(f.Name).Append('=').Append(f.GetValue(m.VmStat)).Append(' ');
        s.AppendLine();
        foreach (var e in m.LockStats.Entries)
            s.AppendLine($"{e.Class}/{e.Mode} acq={e.Acquisitions} con={e.Contentions} wait[{Histogram(e.Wait)}] hold[{Histogram(e.Hold)}]");
        s.AppendLine($"fault latency [{Histogram(m.FaultLatency)}] migration wait [{Histogram(m.MigrationWait)}] writer wait [{Histogram(m.WriterWait)}]");
        s.AppendLine($"frames {m.Frames} free per node {string.Join(",", m.Nodes.Select(n => n.FreeFrames))}");
        foreach (var t in r.PerTask)
            s.Append($"[{t.Ops} {t.Accesses} {t.Sigsegv} {t.Sigbus}]");
        s.AppendLine($" emulated {r.EmulatedNs} events {r.EventCount}");
        foreach (var v in m.Sanitizer.Violations)
            s.AppendLine($"{v.Invariant} cpu{v.Cpu} vma{v.Vma} {v.Address} at {v.EmulatedNs}: {v.Message}");
        s.AppendLine(string.Join("; ", r.Stalled));
        s.AppendLine($"event log {r.EventCount} {r.EventHash:x16}");
        return s.ToString();
    }

    private static string Histogram(NsHistogram h) => $"n={h.Count} total={h.Total} min={h.Min} max={h.Max} p50={h.P50} p99={h.P99}";

    public static IEnumerable<object[]> Cases() =>
        from w in Workloads.Workloads.Names
        from p in FaultPolicies.All
        select new object[] { w, p.Name() };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Run_ahead_gives_the_exact_engines_results(string workload, string policy)
    {
        var m = Machine(FaultPolicies.Parse(policy));
        // Small mappings, so that the fault loops map and unmap several times within the run.
        var p = workload.StartsWith("page-fault") ? new Dictionary<string, string> { ["size_mb"] = "2" } : null;
        var exact = Run(m, workload, runAhead: false, ops: 3_000, p: p);
        var ahead = Run(m, workload, runAhead: true, ops: 3_000, p: p);
        Assert.Equal(Results(exact), Results(ahead));
    }

    [Fact]
    public void Page_fault1_tasks_run_ahead_of_each_other_and_the_engine_runs_far_fewer_events()
    {
        var m = Machine(FaultPolicy.Merged);
        var exact = Run(m, "page-fault1", runAhead: false, ops: 20_000, p: new() { ["size_mb"] = "32" });
        var ahead = Run(m, "page-fault1", runAhead: true, ops: 20_000, p: new() { ["size_mb"] = "32" });
        Assert.Equal(Results(exact), Results(ahead));
        Assert.True(ahead.EngineEvents * 4 < exact.EngineEvents,
            $"engine events: {ahead.EngineEvents} with run-ahead, {exact.EngineEvents} without");
    }

    /// <summary>A task that maps (unless <paramref name="map"/> is null), waits for everyone, thinks, then writes pages in order.</summary>
    private static List<Op> Writer(Op? map, long start, int pages, long thinkNs)
    {
        var ops = new List<Op>();
        if (map is { } m) ops.Add(m);
        ops.Add(Op.Barrier());
        ops.Add(Op.Compute(thinkNs));
        for (int i = 0; i < pages; i++) ops.Add(Op.Write(start + i * 4096L));
        return ops;
    }

    /// <summary>Scripted streams, one task each, run both ways: the results must match and the engine must do less.</summary>
    private static void AssertRunsAheadExactly(string workload, params List<Op>[] streams)
    {
        SimRunOptions Options(bool runAhead) => new()
        {
            Machine = Machine(FaultPolicy.Merged),
            Workload = workload,
            Tasks = streams.Length,
            OpsPerTask = 2_000,
            RunAhead = runAhead,
            Script = streams.Select((ops, i) => (i, ops)).ToDictionary(x => x.i, x => (IReadOnlyList<Op>)x.ops),
        };
        var exact = SimRun.Run(Options(runAhead: false));
        var ahead = SimRun.Run(Options(runAhead: true));
        Assert.Equal(Results(exact), Results(ahead));
        Assert.True(ahead.EngineEvents * 3 < exact.EngineEvents * 2,
            $"engine events: {ahead.EngineEvents} with run-ahead, {exact.EngineEvents} without");
    }

    /// <summary>
    /// Tasks 0 and 1 write the same pages one after the other (their claims overlap: each fault races the other's), while
    /// tasks 2 and 3 each fill a region of their own.
    /// </summary>
    [Fact]
    public void Tasks_whose_ranges_overlap_keep_their_exact_interleaving_while_the_others_run_ahead()
    {
        const long shared = 0x7f00_0000_0000, own = 0x7f10_0000_0000, size = 1024 * 4096L;
        AssertRunsAheadExactly("page-fault1",
            Writer(Op.MapAnon(shared, size), shared, 1024, 0),
            Writer(null, shared, 1024, 300),
            Writer(Op.MapAnon(own, size), own, 1024, 0),
            Writer(Op.MapAnon(own + (1L << 30), size), own + (1L << 30), 1024, 0));
    }

    /// <summary>
    /// Tasks 0 and 1 map one tmpfs file at different addresses and write its pages (they meet in its page cache);
    /// tasks 2 and 3 each fill a file of their own.
    /// </summary>
    [Fact]
    public void Tasks_that_map_one_file_at_different_addresses_keep_their_exact_interleaving()
    {
        List<Op> FileWriter(long start, int file, long thinkNs) => Writer(Op.MapFile(start, 512 * 4096L, file, shared: true), start, 512, thinkNs);
        AssertRunsAheadExactly("page-fault3",
            FileWriter(0x7f00_0000_0000, 0, 0),
            FileWriter(0x7f20_0000_0000, 0, 200),
            FileWriter(0x7f40_0000_0000, 2, 0),
            FileWriter(0x7f60_0000_0000, 3, 0));
    }

    /// <summary>
    /// page-fault1 at will-it-scale's 128 MiB, long enough for the rwsem wake order to desynchronise the CPUs' munmap and
    /// mmap steps: a CPU's mmap then sleeps in mmap_write_lock behind another's munmap, and a CPU's first fault in a new
    /// mapping (no anon_vma yet: lock_vma_under_rcu bails out) sleeps in mmap_read_lock behind that writer. A sleeper acts
    /// no sooner than the lock's holders can wake it; held to its frozen clock, or its run's frozen end, it kept every
    /// other CPU from running ahead while the munmap ran (0.32 engine events per fault here, against 0.026).
    /// </summary>
    [Fact]
    public void Tasks_asleep_on_mmap_lock_do_not_hold_the_others_to_their_frozen_clocks()
    {
        var m = Machine(FaultPolicy.Merged);
        var p = new Dictionary<string, string> { ["size_mb"] = "128" };
        var exact = Run(m, "page-fault1", runAhead: false, ops: 70_000, seed: 1, p: p);
        var ahead = Run(m, "page-fault1", runAhead: true, ops: 70_000, seed: 1, p: p);
        Assert.Equal(Results(exact), Results(ahead));
        Assert.True(ahead.Machine.LockStats[Locking.LockClass.MmapLock, Locking.LockMode.Write].Contentions > 0, "no writer slept in mmap_write_lock");
        Assert.True(ahead.EngineEvents * 10 < ahead.Machine.VmStat.Faults,
            $"engine events: {ahead.EngineEvents} with run-ahead for {ahead.Machine.VmStat.Faults} faults ({exact.EngineEvents} without)");
    }

    private static IEnumerator<Op> Stream(params Op[] ops) => ((IEnumerable<Op>)ops).GetEnumerator();

    [Fact]
    public void The_window_counts_a_miss_only_for_a_page_neither_in_the_TLB_nor_touched_before_it()
    {
        const long a = 0x10_0000, page = 4096;
        var tlb = new Cpu.Tlb();
        tlb.Fill((a + 2 * page) >> 12, Memory.Pte.None + 1);
        var w = new OpWindow(Stream(Op.Write(a), Op.Write(a + page), Op.Write(a), Op.Write(a + 2 * page), Op.Compute(7)),
            capacity: 16, limit: 100, accessMinNs: 5, missMinNs: 35, tlb: tlb);
        Assert.True(w.MoveNext());
        Assert.Equal(5, w.RunLeft);
        // a and a+page miss; a again may hit (a is touched ahead of it); a+2 pages is in the TLB; think time is 7 ns.
        Assert.Equal(35 + 35 + 5 + 5 + 7, w.RunMinNs);
        Assert.Equal((a, a + 2 * page), (w.RunLo, w.RunHi));
        Assert.True(w.RunIsLast);
        Assert.True(w.MoveNext());
        Assert.Equal(35 + 5 + 5 + 7, w.RunMinNs);
    }

    [Fact]
    public void The_window_ends_a_run_at_the_first_system_call_and_starts_the_next_one_after_it()
    {
        const long a = 0x10_0000, b = 0x90_0000;
        var w = new OpWindow(Stream(Op.Write(a), Op.Unmap(a, 4096), Op.Write(b), Op.Write(b)),
            capacity: 16, limit: 100, accessMinNs: 5);
        Assert.True(w.MoveNext());
        Assert.Equal((1, 5L, false), (w.RunLeft, w.RunMinNs, w.RunIsLast));
        Assert.True(w.MoveNext());
        Assert.Equal(OpKind.Munmap, w.Current.Kind);
        Assert.Equal(0, w.RunLeft);
        Assert.True(w.MoveNext());
        Assert.Equal((2, 10L, true), (w.RunLeft, w.RunMinNs, w.RunIsLast));
        Assert.Equal((b, b), (w.RunLo, w.RunHi));
        Assert.True(w.MoveNext());
        Assert.False(w.MoveNext());
    }

    [Fact]
    public void The_window_reads_no_further_than_the_ops_the_task_will_run()
    {
        var w = new OpWindow(Stream(Op.Write(0), Op.Write(4096), Op.Write(8192)), capacity: 16, limit: 2, accessMinNs: 5);
        Assert.True(w.MoveNext());
        Assert.Equal(2, w.RunLeft);
        Assert.True(w.RunIsLast);
        Assert.True(w.MoveNext());
        Assert.False(w.MoveNext());
    }
}
