// Models the acceptance check on the real trace (threads4: 4 threads x 3 rounds on Linux 6.18): the
// reader's counts, first mapping, mapping kinds and TIDs agree with an independent, naive reading of
// the same text.
using System.Globalization;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class SampleTraceTests
{
    private sealed record NaiveCounts(int Lines, int Mmaps, int Faults, int Kernel, SortedSet<int> Tids);

    /// <summary>Counts with plain string operations, independent of the reader's parsing code.</summary>
    private static NaiveCounts CountNaively()
    {
        int mmaps = 0, faults = 0, kernel = 0;
        var tids = new SortedSet<int>();
        foreach (string line in TestTraces.SampleLines)
        {
            string[] words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int tid = int.Parse(words[0], CultureInfo.InvariantCulture);
            bool isKernel = tid == 0 || line.Contains(" -1/", StringComparison.Ordinal);
            if (line.Contains(": page-faults:", StringComparison.Ordinal))
            {
                ulong address = ulong.Parse(words[^1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                isKernel |= address >= 0xffff800000000000;
                if (!isKernel)
                {
                    faults++;
                }
            }
            else if (line.Contains("PERF_RECORD_MMAP", StringComparison.Ordinal))
            {
                if (!isKernel)
                {
                    mmaps++;
                }
            }

            if (isKernel)
            {
                kernel++;
            }
            else
            {
                tids.Add(tid);
            }
        }

        return new NaiveCounts(TestTraces.SampleLines.Length, mmaps, faults, kernel, tids);
    }

    [Fact]
    public void Counts_match_an_independent_count_of_the_sample()
    {
        var naive = CountNaively();
        using var reader = PerfScriptReader.Open(TestTraces.SampleGzPath);
        var stats = reader.Drain();

        Assert.True(reader.IsGzip);
        Assert.Equal(naive.Lines, stats.LinesRead);
        Assert.Equal(naive.Mmaps, stats.Mmaps);
        Assert.Equal(naive.Faults, stats.PageFaults);
        Assert.Equal(naive.Kernel, stats.SkippedFor(PerfSkipReason.Kernel));
        Assert.Equal(naive.Kernel, stats.Skipped);
        Assert.Equal(new Dictionary<string, long> { ["kernel"] = naive.Kernel }, stats.SkippedByReason);

        // Verified by hand with zcat | awk: 38766 lines, 49 MMAP2, 38716 faults, 1 kernel MMAP line.
        Assert.Equal(38766, stats.LinesRead);
        Assert.Equal(49, stats.Mmaps);
        Assert.Equal(38716, stats.PageFaults);
        Assert.Equal(1, stats.SkippedFor(PerfSkipReason.Kernel));
    }

    [Fact]
    public void First_mmap_is_the_main_thread_stack()
    {
        using var reader = PerfScriptReader.Open(TestTraces.SampleGzPath);
        var first = reader.ReadAll().First();

        Assert.Equal(PerfRecordKind.Mmap, first.Kind);
        // 16335   529.634171: PERF_RECORD_MMAP2 16335/16335: [0x7fffc0e31000(0x21000) @ 0x7ffffffde000 00:00 0 0]: rw-p [stack]
        Assert.Equal(
            new PerfMmap(2, 16335, 16335, 529_634_171_000, 0x7fffc0e31000, 0x21000, 0x7ffffffde000,
                PerfProtection.Read | PerfProtection.Write, PerfMappingKind.Stack, "[stack]"),
            first.Mmap);
        Assert.False(first.Mmap.IsShared);
        Assert.Equal(0x7fffc0e31000UL + 0x21000, first.Mmap.End);
    }

    [Fact]
    public void Distinct_tids_match_the_naive_set()
    {
        var naive = CountNaively();
        var parsed = new SortedSet<int>(TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict).Whole.Select(r => r.Tid));

        Assert.Equal(naive.Tids, parsed);
        Assert.Equal([16335, 16337, 16338, 16339, 16340], parsed);
    }

    [Fact]
    public void Mapping_kinds_and_protections_of_the_sample()
    {
        var mmaps = TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict).Whole
            .Where(r => r.IsMmap).Select(r => r.Mmap).ToList();

        Assert.Equal(PerfMappingKind.Special, Assert.Single(mmaps, m => m.Name == "[vdso]").Kind);
        Assert.Equal(PerfMappingKind.Special, Assert.Single(mmaps, m => m.Name == "[vvar]").Kind);
        Assert.Equal(PerfMappingKind.Special, Assert.Single(mmaps, m => m.Name == "[vvar_vclock]").Kind);
        Assert.Equal(PerfProtection.Read | PerfProtection.Exec, Assert.Single(mmaps, m => m.Name == "[vdso]").Protection);

        int anonLines = TestTraces.SampleLines.Count(l => l.EndsWith(" //anon", StringComparison.Ordinal));
        Assert.Equal(anonLines, mmaps.Count(m => m.Kind == PerfMappingKind.Anon));
        Assert.All(mmaps.Where(m => m.Kind == PerfMappingKind.Anon), m => Assert.Equal("//anon", m.Name));
        Assert.All(mmaps.Where(m => m.Kind == PerfMappingKind.File), m => Assert.StartsWith("/", m.Name));
        int fileLines = TestTraces.SampleLines.Count(l => l.Contains("MMAP2", StringComparison.Ordinal) && l.Split(' ')[^1].StartsWith("/", StringComparison.Ordinal) && !l.EndsWith("//anon", StringComparison.Ordinal));
        Assert.Equal(fileLines, mmaps.Count(m => m.Kind == PerfMappingKind.File));

        int guardLines = TestTraces.SampleLines.Count(l => l.Contains("]: ---p ", StringComparison.Ordinal));
        Assert.True(guardLines > 0);
        Assert.Equal(guardLines, mmaps.Count(m => m.Protection == PerfProtection.None));

        // Thread mappings carry the thread's TID and the process's PID.
        Assert.Contains(mmaps, m => m.Tid == 16338 && m.Pid == 16335 && m.Start == 0x7f29d32fc000 && m.Length == 0x300000);
    }

    [Fact]
    public void Lenient_mode_on_the_sample_skips_only_the_kernel_line()
    {
        var strict = TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict);
        var lenient = TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Lenient);

        Assert.Null(strict.Error);
        Assert.Null(lenient.Error);
        Assert.Equal(strict.Records, lenient.Records);
        Assert.Equal(1, lenient.Stats.Skipped);
    }

    [Fact]
    public void Records_come_in_line_order_with_exact_timestamps()
    {
        var records = TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict).Whole;
        for (int i = 1; i < records.Count; i++)
        {
            Assert.True(records[i].LineNumber > records[i - 1].LineNumber);
        }

        // Every record's time equals the text's seconds.micros read as an exact decimal.
        foreach (var r in records.Where((_, i) => i % 97 == 0))
        {
            string line = TestTraces.SampleLines[r.LineNumber - 1];
            string time = line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1].TrimEnd(':');
            decimal expected = decimal.Parse(time, CultureInfo.InvariantCulture) * 1_000_000_000m;
            Assert.Equal((long)expected, r.TimeNs);
        }

        var fault = records.First(r => r.IsPageFault).PageFault;
        Assert.Equal(new PerfPageFault(7, 16335, 529_634_191_000, 0x55b75d56f04c), fault);
    }
}
