// Models whole inputs that are not a healthy trace: empty files, traces without user records, random
// binary data, and gzip streams that are truncated, bit-flipped or followed by junk. Strict mode must
// raise PerfTraceFormatException, lenient mode must return what is intact and count the rest.
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class CorruptInputTests
{
    private static readonly Lazy<List<PerfRecord>> FullSample =
        new(() => TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict).Whole);

    [Fact]
    public void Empty_input_is_an_error_in_strict_and_nothing_in_lenient()
    {
        var strict = TestTraces.Parse([], PerfParseMode.Strict);
        var e = Assert.IsType<PerfTraceFormatException>(strict.Error);
        Assert.Equal(PerfSkipReason.NoRecords, e.Reason);
        Assert.Contains("no records", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("<stream>:0: ", e.Message, StringComparison.Ordinal);

        var lenient = TestTraces.Parse([], PerfParseMode.Lenient);
        Assert.Null(lenient.Error);
        Assert.Empty(lenient.Records);
        Assert.Equal(0, lenient.Stats.LinesRead);
        Assert.Equal(0, lenient.Stats.Skipped);

        var emptyGz = TestTraces.Gzip([]);
        Assert.Equal(PerfSkipReason.NoRecords, Assert.IsType<PerfTraceFormatException>(TestTraces.Parse(emptyGz, PerfParseMode.Strict).Error).Reason);
        Assert.Null(TestTraces.Parse(emptyGz, PerfParseMode.Lenient).Error);
    }

    [Fact]
    public void A_trace_of_only_kernel_lines_has_no_records()
    {
        string text = "    0     0.000000: PERF_RECORD_MMAP -1/0: [0xffffffff81000000(0x120bb08) @ 0xffffffff81000000]: x [kernel.kallsyms]_text\n";
        var e = Assert.IsType<PerfTraceFormatException>(TestTraces.ParseStrict(text).Error);
        Assert.Equal(PerfSkipReason.NoRecords, e.Reason);
        Assert.Equal(1, e.LineNumber);

        var lenient = TestTraces.ParseLenient(text);
        Assert.Null(lenient.Error);
        Assert.Equal(1, lenient.Stats.SkippedFor(PerfSkipReason.Kernel));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_binary_input_fails_strictly_and_is_skipped_leniently(int seed)
    {
        var rng = new Random(seed);
        byte[] data = new byte[200_000];
        rng.NextBytes(data);
        data[0] = 0; // not gzip magic

        var strict = TestTraces.Parse(data, PerfParseMode.Strict);
        Assert.Equal(PerfSkipReason.BinaryGarbage, Assert.IsType<PerfTraceFormatException>(strict.Error).Reason);

        var lenient = TestTraces.Parse(data, PerfParseMode.Lenient);
        Assert.Null(lenient.Error);
        Assert.Empty(lenient.Records);
        Assert.True(lenient.Stats.SkippedFor(PerfSkipReason.BinaryGarbage) > 0);
        Assert.Equal(lenient.Stats.LinesRead, lenient.Stats.Skipped);

        // The same garbage gzip-compressed: decompresses fine, parses as garbage.
        var gz = TestTraces.Parse(TestTraces.Gzip(data), PerfParseMode.Lenient);
        Assert.Null(gz.Error);
        Assert.Equal(lenient.Stats.SkippedByReason, gz.Stats.SkippedByReason);
    }

    [Fact]
    public void Truncated_gzip_is_detected_at_every_cut()
    {
        byte[] gz = TestTraces.SampleGz;
        var full = FullSample.Value;
        var cuts = new List<int> { 2, 5, 10, 11, 12, 19, 20, 100, 4096, 65536, gz.Length / 2 };
        for (int i = 1; i <= 12; i++)
        {
            cuts.Add(gz.Length - i);
        }

        foreach (int cut in cuts)
        {
            byte[] truncated = gz[..cut];
            var strict = TestTraces.Parse(truncated, PerfParseMode.Strict);
            var e = Assert.IsType<PerfTraceFormatException>(strict.Error);
            Assert.True(e.Reason is PerfSkipReason.CorruptStream or PerfSkipReason.NoRecords, $"cut {cut}: {e.Message}");

            var lenient = TestTraces.Parse(truncated, PerfParseMode.Lenient);
            Assert.Null(lenient.Error);
            Assert.Equal(1, lenient.Stats.SkippedFor(PerfSkipReason.CorruptStream));
            Assert.Equal(lenient.Stats.LinesRead, lenient.Stats.Records + lenient.Stats.Skipped);

            // Whatever was yielded is an exact prefix of the real records: no half line slipped through.
            Assert.True(lenient.Records.Count < full.Count || cut > gz.Length - 12, $"cut {cut}");
            Assert.Equal(full.Take(lenient.Records.Count), lenient.Records);
            Assert.Equal(lenient.Records, strict.Records);
        }
    }

    [Fact]
    public void Corrupt_gzip_never_escapes_as_another_exception()
    {
        byte[] gz = TestTraces.SampleGz;
        var full = FullSample.Value;
        var rng = new Random(7);
        for (int i = 0; i < 40; i++)
        {
            byte[] bad = (byte[])gz.Clone();
            int at = rng.Next(10, bad.Length);
            bad[at] ^= (byte)rng.Next(1, 256);

            var strict = TestTraces.Parse(bad, PerfParseMode.Strict);
            Assert.IsType<PerfTraceFormatException>(strict.Error);

            var lenient = TestTraces.Parse(bad, PerfParseMode.Lenient);
            Assert.Null(lenient.Error);
            Assert.True(lenient.Stats.Skipped > 1, $"flip at {at}: {lenient.Stats}");
            Assert.Equal(lenient.Stats.LinesRead, lenient.Stats.Records + lenient.Stats.Skipped);
        }
    }

    [Fact]
    public void Junk_after_the_gzip_stream_is_corrupt_stream()
    {
        byte[] bad = [.. TestTraces.SampleGz, .. "garbage"u8];
        var strict = TestTraces.Parse(bad, PerfParseMode.Strict);
        var e = Assert.IsType<PerfTraceFormatException>(strict.Error);
        Assert.Equal(PerfSkipReason.CorruptStream, e.Reason);
        Assert.Equal("stream", e.Field);
        Assert.Equal(38767, e.LineNumber);

        var lenient = TestTraces.Parse(bad, PerfParseMode.Lenient);
        Assert.Equal(FullSample.Value, lenient.Whole);
        Assert.Equal(1, lenient.Stats.SkippedFor(PerfSkipReason.CorruptStream));
    }

    [Fact]
    public void Concatenated_gzip_members_parse_when_the_trailer_matches()
    {
        // Two members where the second holds everything after an empty first: .NET reads both.
        byte[] text = Encoding.ASCII.GetBytes("16335   529.634191: page-faults:     55b75d56f04c\n");
        byte[] twoMembers = [.. TestTraces.Gzip([]), .. TestTraces.Gzip(text)];
        var result = TestTraces.Parse(twoMembers, PerfParseMode.Strict);
        Assert.Null(result.Error);
        Assert.Single(result.Records);
    }
}
