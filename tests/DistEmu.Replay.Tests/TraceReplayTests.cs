// Models the acceptance checks of `distemu replay` on the real sample: the emulated fault count equals
// an independent count of first touches, the emulated VMA set equals the trace's mapping set, runs are
// deterministic, and replication builds the expected mms and tasks.
using System.Globalization;
using System.Text.Json;
using DistEmu.Kernel.Machine;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public class TraceReplayTests
{
    private static readonly MachineSpec Small = new() { Name = "2x4", Nodes = 2, CpusPerNode = 4, MemoryPerNodeBytes = 2L << 30 };

    private static readonly MachineSpec Wide = new() { Name = "2x8", Nodes = 2, CpusPerNode = 8, MemoryPerNodeBytes = 2L << 30 };

    private static readonly Lazy<ReplayResult> SampleRun = new(() => TraceReplay.RunSim(TestTraces.SampleGzPath, Small, new ReplayOptions()));

    private sealed record Interval(ulong Start, ulong End, string Prot);

    private sealed record RawLine(bool IsMmap, int Tid, ulong Start, ulong Length, string Prot, ulong Address);

    /// <summary>Independent of the reader: the sample's user lines by plain string splitting.</summary>
    private static List<RawLine> RawLines()
    {
        var result = new List<RawLine>();
        foreach (string line in TestTraces.SampleLines)
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int tid = int.Parse(f[0], CultureInfo.InvariantCulture);
            if (tid == 0)
            {
                continue;
            }

            if (line.Contains("PERF_RECORD_MMAP2", StringComparison.Ordinal))
            {
                int open = line.IndexOf("[0x", StringComparison.Ordinal);
                int paren = line.IndexOf('(', open);
                int close = line.IndexOf(')', paren);
                ulong start = ulong.Parse(line.AsSpan(open + 3, paren - open - 3), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                ulong len = ulong.Parse(line.AsSpan(paren + 3, close - paren - 3), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                string prot = line[(line.IndexOf("]: ", StringComparison.Ordinal) + 3)..].Split(' ')[0];
                result.Add(new RawLine(true, tid, start, len, prot, 0));
            }
            else if (line.Contains("page-faults:", StringComparison.Ordinal))
            {
                result.Add(new RawLine(false, tid, 0, 0, "", ulong.Parse(f[^1], NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
            }
        }

        return result;
    }

    private static List<Interval> Replace(List<Interval> set, ulong start, ulong end, string prot)
    {
        var next = new List<Interval>();
        foreach (var iv in set)
        {
            if (iv.End <= start || iv.Start >= end)
            {
                next.Add(iv);
                continue;
            }

            if (iv.Start < start)
            {
                next.Add(iv with { End = start });
            }

            if (iv.End > end)
            {
                next.Add(iv with { Start = end });
            }
        }

        next.Add(new Interval(start, end, prot));
        next.Sort((a, b) => a.Start.CompareTo(b.Start));
        return next;
    }

    private static string Perm(string prot) => prot.Length >= 3 ? prot[..3] : prot;

    private static List<Interval> Coalesce(IEnumerable<Interval> set)
    {
        var list = new List<Interval>();
        foreach (var iv in set.OrderBy(i => i.Start))
        {
            if (list.Count > 0 && list[^1].End == iv.Start && list[^1].Prot == iv.Prot)
            {
                list[^1] = list[^1] with { End = iv.End };
            }
            else
            {
                list.Add(iv);
            }
        }

        return list;
    }

    [Fact]
    public void ColdStartFaultsAreFirstTouchesPlusTheWriteAfterARead()
    {
        // Rule: each trace fault line becomes one access. On a cold machine an access faults iff its page has not been
        // touched by any task of the mm since the mapping covering it was (re)mapped (a later MMAP2 over a range
        // discards its pages), or if it is the write after a read: a page that faults again in the same epoch was
        // read first, mapping the zero page or a read-only page-cache folio, so in a writable mapping its second
        // fault is do_wp_page. A third fault in an epoch has no access kind left to explain it. Accesses outside
        // every mapping (known or inferred) and in PROT_NONE mappings are skipped.
        var run = SampleRun.Value;
        var inferred = run.Report.InferredRegions.Select(r => new Interval(r.Start, r.End, "rw-")).ToList();
        var set = new List<Interval>();
        var touched = new Dictionary<ulong, int>();
        long expected = 0;
        long accesses = 0;
        foreach (var l in RawLines())
        {
            if (l.IsMmap)
            {
                ulong end = (l.Start + l.Length + 4095) & ~4095UL;
                set = Replace(set, l.Start, end, Perm(l.Prot));
                foreach (var p in touched.Keys.Where(p => p >= l.Start && p < end).ToList())
                {
                    touched.Remove(p);
                }

                continue;
            }

            var hit = set.FirstOrDefault(i => l.Address >= i.Start && l.Address < i.End)
                      ?? inferred.FirstOrDefault(i => l.Address >= i.Start && l.Address < i.End);
            if (hit is null || hit.Prot == "---")
            {
                continue;
            }

            accesses++;
            ulong page = l.Address & ~4095UL;
            int n = touched.GetValueOrDefault(page) + 1;
            touched[page] = n;
            if (n == 1 || (n == 2 && hit.Prot.Contains('w', StringComparison.Ordinal)))
            {
                expected++;
            }
        }

        var r = run.Report;
        Assert.Equal(accesses, r.Ops["access_read"] + r.Ops["access_write"]);
        Assert.Empty(run.Harness.Violations);
        Assert.Empty(run.Harness.Stalled);
        Assert.Equal(0, r.Run.Sigsegv + r.Run.Sigbus);
        Assert.Equal(expected, run.Machine.VmStat.Faults);
    }

    [Fact]
    public void EmulatedVmaSetMatchesTraceMappings()
    {
        var run = SampleRun.Value;
        var set = new List<Interval>();
        foreach (var l in RawLines().Where(l => l.IsMmap))
        {
            set = Replace(set, l.Start, (l.Start + l.Length + 4095) & ~4095UL, Perm(l.Prot));
        }

        foreach (var r in run.Report.InferredRegions)
        {
            set = Replace(set, r.Start, r.End, "rw-");
        }

        var mm = Assert.Single(run.Mms);
        var emulated = mm.Tree.Vmas.Select(v => new Interval((ulong)v.Start, (ulong)v.End,
            ((v.Flags & Kernel.Mm.VmFlags.Read) != 0 ? "r" : "-") + ((v.Flags & Kernel.Mm.VmFlags.Write) != 0 ? "w" : "-") + ((v.Flags & Kernel.Mm.VmFlags.Exec) != 0 ? "x" : "-")));
        Assert.Equal(Coalesce(set), Coalesce(emulated));
    }

    [Fact]
    public void SameSeedGivesSameEventHash()
    {
        var a = TraceReplay.RunSim(TestTraces.SampleGzPath, Small, new ReplayOptions { Seed = 7 });
        Assert.Equal(SampleRun.Value.Machine.Events.Count, a.Machine.Events.Count);
        var b = TraceReplay.RunSim(TestTraces.SampleGzPath, Small, new ReplayOptions { Seed = 7 });
        Assert.Equal(a.Machine.Events.Hash, b.Machine.Events.Hash);
        Assert.Equal(a.Machine.VmStat.Faults, b.Machine.VmStat.Faults);
    }

    [Fact]
    public void ReplicateGivesOneMmPerCopy()
    {
        var run = TraceReplay.RunSim(TestTraces.SampleGzPath, Wide, new ReplayOptions { Replicate = 3, AsFastAsPossible = true });
        Assert.Equal(3, run.Mms.Count);
        Assert.Equal(15, run.Harness.Tasks.Count);
        Assert.Equal(3, run.Harness.Tasks.Select(t => t.Mm).Distinct().Count());
        Assert.Equal(15, run.Harness.Tasks.Select(t => t.Cpu).Distinct().Count());
        Assert.Empty(run.Harness.Violations);
        Assert.Equal(3 * SampleRun.Value.Machine.VmStat.Faults, run.Machine.VmStat.Faults);
    }

    [Fact]
    public void ReplicateSharedMmGivesOneMmAndAllTasks()
    {
        var run = TraceReplay.RunSim(TestTraces.SampleGzPath, Wide, new ReplayOptions { Replicate = 3, SharedMm = true, AsFastAsPossible = true });
        var mm = Assert.Single(run.Mms);
        Assert.Equal(15, run.Harness.Tasks.Count);
        Assert.All(run.Harness.Tasks, t => Assert.Same(mm, t.Mm));
        Assert.Empty(run.Harness.Violations);
        Assert.Equal(0, run.Report.Run.Sigsegv);
        // Copies touch the same pages: each page faults at most once per first touch, except when copies race on it.
        Assert.InRange(run.Machine.VmStat.Faults, SampleRun.Value.Machine.VmStat.Faults, 3 * SampleRun.Value.Machine.VmStat.Faults);
    }

    [Fact]
    public void ReadAheadIsCappedAndDoesNotChangeFaults()
    {
        // With the default cap the main thread, whose next op comes after all its threads' ops (pthread_join),
        // makes the reader queue the whole trace; a small cap keeps the queues bounded instead.
        var run = TraceReplay.RunSim(TestTraces.SampleGzPath, Small, new ReplayOptions { MaxBufferedOps = 256 });
        Assert.Empty(run.Harness.Violations);
        Assert.Empty(run.Harness.Stalled);
        Assert.InRange(run.Report.Run.MaxBufferedOps, 1, 256 + 8);
        Assert.True(run.Report.Run.ReadAheadWaits > 0);
        Assert.Equal(SampleRun.Value.Machine.VmStat.Faults, run.Machine.VmStat.Faults);
        Assert.Equal(0, run.Report.Run.Sigsegv + run.Report.Run.Sigbus);
    }

    [Fact]
    public void TooFewCpusIsAConfigError()
    {
        var e = Assert.Throws<KernelConfigException>(() => TraceReplay.RunSim(TestTraces.SampleGzPath, Small, new ReplayOptions { Replicate = 2 }));
        Assert.Equal("cpus", e.Field);
    }

    [Fact]
    public void ReportJsonHasTheDocumentedKeys()
    {
        var r = SampleRun.Value.Report;
        using var doc = JsonDocument.Parse(r.ToJson());
        var root = doc.RootElement;
        foreach (string key in new[] { "lines_read", "ops", "skipped", "inferred_regions", "tid_cpu", "notes" })
        {
            Assert.True(root.TryGetProperty(key, out _), key);
        }

        Assert.Equal(TestTraces.SampleLines.Length, root.GetProperty("lines_read").GetInt64());
        Assert.Equal(1, root.GetProperty("skipped").GetProperty("kernel").GetInt64());
        Assert.Contains(root.GetProperty("notes").EnumerateArray(), n => n.GetString() == ReplayReport.FaultKindNote);
        Assert.Equal(5, root.GetProperty("tid_cpu").EnumerateObject().Count());
        Assert.Equal([16335, 16337, 16338, 16339, 16340], SampleRun.Value.Tids.Order().ToArray());
    }
}
