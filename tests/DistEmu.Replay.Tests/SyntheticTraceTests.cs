// Models the synthetic trace generator and the reader's cost: generated traces round-trip through the
// reader with the generator's own counts, are deterministic per seed, keep faults inside mappings,
// and parse without per-line allocation. The parse rate is measured in bench/, not here.
using System.Globalization;
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class SyntheticTraceTests
{
    private static (byte[] Bytes, SyntheticTraceSummary Summary) Generate(long lines, int seed, int threads = 4)
    {
        using var sw = new StringWriter(CultureInfo.InvariantCulture);
        var summary = SyntheticTrace.Write(sw, lines, seed, threads);
        return (Encoding.UTF8.GetBytes(sw.ToString()), summary);
    }

    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 1)]
    [InlineData(5, 2)]
    [InlineData(50_000, 3)]
    [InlineData(50_000, 4)]
    public void Round_trip_counts_match_the_generator(long lines, int seed)
    {
        var (bytes, summary) = Generate(lines, seed);
        Assert.Equal(lines, summary.Lines);
        Assert.Equal(lines, bytes.Count(b => b == (byte)'\n'));
        Assert.Equal(lines, summary.Mmaps + summary.PageFaults + summary.KernelLines);

        var result = TestTraces.Parse(bytes, PerfParseMode.Lenient);
        Assert.Null(result.Error);
        Assert.Equal(lines, result.Stats.LinesRead);
        Assert.Equal(summary.Mmaps, result.Stats.Mmaps);
        Assert.Equal(summary.PageFaults, result.Stats.PageFaults);
        Assert.Equal(summary.KernelLines, result.Stats.SkippedFor(PerfSkipReason.Kernel));
        Assert.Equal(summary.KernelLines, result.Stats.Skipped);
        Assert.Equal(summary.Tids, result.Records.Select(r => r.Tid).Distinct().Order());

        if (summary.Mmaps + summary.PageFaults > 0)
        {
            var strict = TestTraces.Parse(bytes, PerfParseMode.Strict);
            Assert.Null(strict.Error);
            Assert.Equal(result.Records, strict.Records);
        }
    }

    [Fact]
    public void Large_trace_has_every_record_kind_and_threads()
    {
        var (bytes, summary) = Generate(50_000, 11, threads: 6);
        Assert.Equal(7, summary.Tids.Count);
        Assert.True(summary.Mmaps > 20);
        Assert.True(summary.KernelLines > 1);

        var records = TestTraces.Parse(bytes, PerfParseMode.Strict).Whole;
        var kinds = records.Where(r => r.IsMmap).Select(r => r.Mmap.Kind).ToHashSet();
        Assert.Equal(Enum.GetValues<PerfMappingKind>().ToHashSet(), kinds);
    }

    [Fact]
    public void Same_seed_same_text_other_seed_other_text()
    {
        Assert.Equal(SyntheticTrace.ToText(3000, 5), SyntheticTrace.ToText(3000, 5));
        Assert.NotEqual(SyntheticTrace.ToText(3000, 5), SyntheticTrace.ToText(3000, 6));
        // A prefix of a longer trace is the shorter trace.
        Assert.StartsWith(SyntheticTrace.ToText(1000, 5), SyntheticTrace.ToText(3000, 5), StringComparison.Ordinal);
    }

    [Fact]
    public void Faults_fall_inside_earlier_mappings_and_time_increases()
    {
        var (bytes, _) = Generate(20_000, 21);
        var records = TestTraces.Parse(bytes, PerfParseMode.Strict).Whole;
        var maps = new List<PerfMmap>();
        long lastTime = 0;
        foreach (var r in records)
        {
            Assert.True(r.TimeNs > lastTime);
            lastTime = r.TimeNs;
            if (r.IsMmap)
            {
                maps.Add(r.Mmap);
            }
            else
            {
                ulong a = r.PageFault.Address;
                Assert.Contains(maps, m => m.Contains(a));
            }
        }
    }

    [Fact]
    public void Parsing_allocates_nothing_per_line()
    {
        var (bytes, _) = Generate(200_000, 8);
        var stream = new MemoryStream(bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        using (var reader = new PerfScriptReader(stream))
        {
            long n = 0;
            while (reader.TryRead(out _))
            {
                n++;
            }

            Assert.True(n > 190_000);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Buffers (64 KiB + 8 KiB) and a few names; 200k lines at even 8 bytes each would be 1.6 MB.
        Assert.True(allocated < 256 * 1024, $"allocated {allocated:N0} bytes for 200k lines");
    }
}
