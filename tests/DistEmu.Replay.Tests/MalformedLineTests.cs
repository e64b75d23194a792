// Models every kind of malformed line: strict mode must throw PerfTraceFormatException naming the
// source, the 1-based line, the field and the offending text; lenient mode must skip exactly that
// line, count it under the right reason, and go on.
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class MalformedLineTests
{
    private const string Good = "16335   529.634191: page-faults:     55b75d56f04c";
    private const string MmapHead = "16335   529.634184: PERF_RECORD_MMAP2 16335/16335: ";

    public static TheoryData<string, PerfSkipReason, string, string> Cases => new()
    {
        // line, reason, field, offending text as quoted in the message
        { "16335   529.634191: page-faults:     55b75zz", PerfSkipReason.BadHex, "address", "55b75zz" },
        { "16335   529.634191: page-faults:     1ffffffffffffffff", PerfSkipReason.BadHex, "address", "1ffffffffffffffff" },
        { "16335   529.634191: page-faults:     0x", PerfSkipReason.BadHex, "address", "0x" },
        { "16335   529.634191: page-faults:     55b75d56f04c trailing", PerfSkipReason.BadSyntax, "address", "55b75d56f04c trailing" },
        { "16335   529.634191: page-faults:", PerfSkipReason.Truncated, "address", "16335   529.634191: page-faults:" },
        { "16335   529.634191:", PerfSkipReason.Truncated, "event", "16335   529.634191:" },
        { "16335", PerfSkipReason.Truncated, "time", "16335" },
        { "16a35   529.634191: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "tid", "16a35" },
        { "99999999999   529.634191: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "tid", "99999999999" },
        { "16335   529.63x191: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "time", "529.63x191:" },
        { "16335   529.634191 page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "time", "529.634191" },
        { "16335   529.: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "time", "529.:" },
        { "16335   529.1234567890: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "time", "529.1234567890:" },
        { "16335   99999999999.000001: page-faults:     55b75d56f04c", PerfSkipReason.BadNumber, "time", "99999999999.000001:" },
        { "16335   529.634191: minor-faults:     55b75d56f04c", PerfSkipReason.UnknownEvent, "event", "minor-faults:" },
        { "16335   529.634191: PERF_RECORD_BOGUS 1/1: x", PerfSkipReason.UnknownEvent, "event", "PERF_RECORD_BOGUS" },
        { "16335   529.634191: page-faults     55b75d56f04c", PerfSkipReason.UnknownEvent, "event", "page-faults" },
        { MmapHead + "[0x55b75d56c000(0x10", PerfSkipReason.Truncated, "mmap length", MmapHead + "[0x55b75d56c000(0x10" },
        { MmapHead + "[0x55b75d56c000(0x1g00) @ 0x1000 fe:00 1 2]: r-xp /tmp/traces/mt2", PerfSkipReason.BadHex, "mmap length", "0x1g00" },
        { MmapHead + "[0x55b75zz6c000(0x1000) @ 0x1000 fe:00 1 2]: r-xp /tmp/traces/mt2", PerfSkipReason.BadHex, "mmap start", "0x55b75zz6c000" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x10q0 fe:00 1 2]: r-xp /tmp/traces/mt2", PerfSkipReason.BadHex, "mmap offset", "0x10q0" },
        { MmapHead + "0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]: r-xp /tmp/traces/mt2", PerfSkipReason.BadSyntax, "mmap start", "0x55b75d56c000(0x1000)" },
        { MmapHead + "[0x55b75d56c000(0x1000) 0x1000 fe:00 1 2]: r-xp /tmp/traces/mt2", PerfSkipReason.BadSyntax, "mmap offset", "0x1000" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2: r-xp /tmp/traces/mt2", PerfSkipReason.Truncated, "mmap device", MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2: r-xp /tmp/traces/mt2" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2] r-xp /tmp/traces/mt2", PerfSkipReason.BadSyntax, "protection", "r-xp" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]: rq-p /tmp/traces/mt2", PerfSkipReason.BadProtection, "protection", "rq-p" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]: r-xpp /tmp/traces/mt2", PerfSkipReason.BadProtection, "protection", "r-xpp" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]: r-xp", PerfSkipReason.Truncated, "name", MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]: r-xp" },
        { MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]:", PerfSkipReason.Truncated, "protection", MmapHead + "[0x55b75d56c000(0x1000) @ 0x1000 fe:00 1 2]:" },
        { "16335   529.634184: PERF_RECORD_MMAP2 16x35/16335: [0x1000(0x1000) @ 0 00:00 0 0]: rw-p //anon", PerfSkipReason.BadNumber, "pid", "16x35" },
        { "16335   529.634184: PERF_RECORD_MMAP2 16335/16335 [0x1000(0x1000) @ 0 00:00 0 0]: rw-p //anon", PerfSkipReason.BadSyntax, "tid", "16335" },
        { "16335   529.634184: PERF_RECORD_MMAP2 16335/", PerfSkipReason.Truncated, "tid", "16335   529.634184: PERF_RECORD_MMAP2 16335/" },
        { "16335   529.634184: PERF_RECORD_MMAP 16335/16335: [0x1000(0x1000) @ 0]: w /x", PerfSkipReason.BadProtection, "protection", "w" },
        { "", PerfSkipReason.EmptyLine, "line", "" },
        { "   \t ", PerfSkipReason.EmptyLine, "line", "   \\t " },
        { "16335   529.6341\0: page-faults:     55b75d56f04c", PerfSkipReason.BinaryGarbage, "line", "16335   529.6341\\x00: page-faults:     55b75d56f04c" },
        { "\u0001\u0002\u0003", PerfSkipReason.BinaryGarbage, "line", "\\x01\\x02\\x03" },
    };

    private static byte[] Trace(byte[] badLine)
    {
        var ms = new MemoryStream();
        ms.Write(Encoding.UTF8.GetBytes(Good + "\n"));
        ms.Write(badLine);
        ms.Write(Encoding.UTF8.GetBytes("\n" + Good + "\n"));
        return ms.ToArray();
    }

    private static void AssertStrictAndLenient(byte[] badLine, PerfSkipReason reason, string field, string? quoted)
    {
        Assert.True(reason.IsError());
        byte[] trace = Trace(badLine);

        var strict = TestTraces.Parse(trace, PerfParseMode.Strict);
        var e = Assert.IsType<PerfTraceFormatException>(strict.Error);
        Assert.Equal(2, e.LineNumber);
        Assert.Equal(reason, e.Reason);
        Assert.Equal(field, e.Field);
        Assert.Equal("<stream>", e.SourceName);
        Assert.StartsWith("<stream>:2: ", e.Message, StringComparison.Ordinal);
        Assert.Contains($"field '{field}'", e.Message, StringComparison.Ordinal);
        if (quoted is not null)
        {
            if (reason == PerfSkipReason.Truncated && quoted.Length > PerfTraceFormatException.MaxTextBytes)
            {
                // Long truncated lines are quoted by their last bytes.
                quoted = "..." + quoted[^PerfTraceFormatException.MaxTextBytes..];
            }

            Assert.Equal(quoted, e.OffendingText);
            Assert.EndsWith($": \"{quoted}\"", e.Message, StringComparison.Ordinal);
        }

        Assert.Single(strict.Records); // line 1 was yielded before the error

        var lenient = TestTraces.Parse(trace, PerfParseMode.Lenient);
        Assert.Null(lenient.Error);
        Assert.Equal([1L, 3L], lenient.Records.Select(r => r.LineNumber));
        Assert.Equal(3, lenient.Stats.LinesRead);
        Assert.Equal(1, lenient.Stats.SkippedFor(reason));
        Assert.Equal(1, lenient.Stats.Skipped);
        Assert.Equal(new Dictionary<string, long> { [reason.Name()] = 1 }, lenient.Stats.SkippedByReason);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Malformed_line(string line, PerfSkipReason reason, string field, string quoted) =>
        AssertStrictAndLenient(Encoding.UTF8.GetBytes(line), reason, field, quoted);

    [Fact]
    public void Message_has_the_documented_shape()
    {
        var e = Assert.IsType<PerfTraceFormatException>(
            TestTraces.ParseStrict(Good + "\n16335   529.634191: page-faults:     55b75zz\n").Error);
        Assert.Equal("<stream>:2: bad hex in field 'address': \"55b75zz\"", e.Message);
    }

    [Fact]
    public void Message_names_the_file_when_opened_by_path()
    {
        string path = Path.Combine(Path.GetTempPath(), $"threads4-{Guid.NewGuid():N}.perf.txt");
        File.WriteAllText(path, Good + "\n" + Good + "\n16335   529.634191: page-faults:     55b75zz\n");
        try
        {
            using var reader = PerfScriptReader.Open(path);
            var e = Assert.Throws<PerfTraceFormatException>(() => reader.Drain());
            Assert.Equal($"{path}:3: bad hex in field 'address': \"55b75zz\"", e.Message);
            Assert.Equal(path, e.SourceName);
            Assert.False(reader.TryRead(out _)); // the reader stays finished after the error
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Invalid_utf8_is_binary_garbage()
    {
        byte[] line = [.. Encoding.ASCII.GetBytes(MmapHead + "[0x1000(0x1000) @ 0 00:00 0 0]: r--p /tmp/"), 0xFF, 0xFE, (byte)'x'];
        AssertStrictAndLenient(line, PerfSkipReason.BinaryGarbage, "line", null);
    }

    [Fact]
    public void Lone_0xff_and_0x7f_bytes_are_binary_garbage()
    {
        AssertStrictAndLenient([0xFF], PerfSkipReason.BinaryGarbage, "line", "\\xff");
        AssertStrictAndLenient([0x7F, (byte)'a'], PerfSkipReason.BinaryGarbage, "line", "\\x7fa");
    }

    [Fact]
    public void A_megabyte_line_is_line_too_long_and_reading_goes_on()
    {
        byte[] huge = new byte[1 << 20];
        huge.AsSpan().Fill((byte)'7');
        string expectedPrefix = new string('7', PerfTraceFormatException.MaxTextBytes) + "...";
        AssertStrictAndLenient(huge, PerfSkipReason.LineTooLong, "line", expectedPrefix);
    }

    [Fact]
    public void A_line_just_over_the_cap_is_too_long_and_one_at_the_cap_is_not()
    {
        const int cap = 100;
        string atCap = "16335 1.0: page-faults: " + new string(' ', cap - 27) + "abc";
        Assert.Equal(cap, atCap.Length);
        var ok = TestTraces.Parse(Encoding.ASCII.GetBytes(atCap + "\n"), PerfParseMode.Strict, cap);
        Assert.Null(ok.Error);
        Assert.Equal(0xabcUL, Assert.Single(ok.Records).PageFault.Address);

        var over = TestTraces.Parse(Encoding.ASCII.GetBytes(Good + "\n" + atCap + "0\n"), PerfParseMode.Strict, cap);
        var e = Assert.IsType<PerfTraceFormatException>(over.Error);
        Assert.Equal(PerfSkipReason.LineTooLong, e.Reason);
        Assert.Equal(2, e.LineNumber);
        Assert.Contains("longer than 100 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_megabyte_without_newline_at_the_end_does_not_grow_memory()
    {
        // 8 MiB of garbage with no newline, streamed: the reader must discard it, not buffer it.
        byte[] junk = new byte[8 << 20];
        junk.AsSpan().Fill((byte)'a');
        byte[] trace = [.. Encoding.ASCII.GetBytes(Good + "\n"), .. junk];
        long before = GC.GetAllocatedBytesForCurrentThread();
        var lenient = TestTraces.Parse(new TrickleStream(trace, 1 << 16), PerfParseMode.Lenient);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Null(lenient.Error);
        Assert.Single(lenient.Records);
        Assert.Equal(1, lenient.Stats.SkippedFor(PerfSkipReason.LineTooLong));
        Assert.True(allocated < 1 << 20, $"allocated {allocated} bytes for an 8 MiB line");
    }
}
