// Models the well-formed variants of the perf script format the reader must accept: gzip vs plain,
// buffer boundaries, CRLF, time precision, MMAP vs MMAP2 (and build-id MMAP2), mapping-name kinds,
// shared mappings, and records perf prints that are skipped without error (comments, COMM/FORK/EXIT,
// LOST, kernel lines).
using System.Text;
using DistEmu.Replay;

namespace DistEmu.Replay.Tests;

public sealed class FormatVariantTests
{
    private const string Fault = "16335   529.634191: page-faults:     55b75d56f04c";

    private static string Mmap2(string protection, string name, string inner = "0x7f29d9913000 00:00 0 0") =>
        $"16335   529.634454: PERF_RECORD_MMAP2 16335/16335: [0x7f29d9913000(0x2000) @ {inner}]: {protection} {name}";

    private static PerfMmap SingleMmap(string line)
    {
        var result = TestTraces.ParseStrict(line + "\n");
        Assert.Null(result.Error);
        return Assert.Single(result.Records).Mmap;
    }

    [Fact]
    public void Gzip_and_plain_sample_give_identical_records()
    {
        var gz = TestTraces.Parse(TestTraces.SampleGz, PerfParseMode.Strict);
        var plain = TestTraces.Parse(TestTraces.SamplePlain, PerfParseMode.Strict);

        Assert.Null(gz.Error);
        Assert.Null(plain.Error);
        Assert.Equal(38765, plain.Records.Count);
        Assert.Equal(plain.Records, gz.Records);
    }

    [Fact]
    public void Gzip_is_detected_by_magic_bytes_not_by_name()
    {
        string dir = Path.Combine(Path.GetTempPath(), "distemu-replay-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            string gzNamedTxt = Path.Combine(dir, "trace.txt");
            string plainNamedGz = Path.Combine(dir, "trace.gz");
            File.WriteAllBytes(gzNamedTxt, TestTraces.SampleGz);
            File.WriteAllBytes(plainNamedGz, TestTraces.SamplePlain);

            using var a = PerfScriptReader.Open(gzNamedTxt);
            using var b = PerfScriptReader.Open(plainNamedGz);
            var ra = a.ReadAll().ToList();
            var rb = b.ReadAll().ToList();

            Assert.True(a.IsGzip);
            Assert.False(b.IsGzip);
            Assert.Equal(rb, ra);
            Assert.Equal(38765, ra.Count);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4093)]
    public void Tiny_reads_give_the_same_records(int chunk)
    {
        // The first 3000 lines, so the 1-byte case stays fast.
        byte[] plain = Encoding.UTF8.GetBytes(string.Join('\n', TestTraces.SampleLines.Take(3000)) + "\n");
        var whole = TestTraces.Parse(plain, PerfParseMode.Strict);
        var trickled = TestTraces.Parse(new TrickleStream(plain, chunk), PerfParseMode.Strict);
        var trickledGz = TestTraces.Parse(new TrickleStream(TestTraces.Gzip(plain), chunk), PerfParseMode.Strict);

        Assert.Null(whole.Error);
        Assert.Null(trickled.Error);
        Assert.Null(trickledGz.Error);
        Assert.Equal(2999, whole.Records.Count);
        Assert.Equal(whole.Records, trickled.Records);
        Assert.Equal(whole.Records, trickledGz.Records);
    }

    [Fact]
    public void Crlf_and_missing_final_newline_are_accepted()
    {
        var crlf = TestTraces.ParseStrict(Fault + "\r\n" + Fault);
        Assert.Null(crlf.Error);
        Assert.Equal(2, crlf.Records.Count);
        Assert.All(crlf.Records, r => Assert.Equal(0x55b75d56f04cUL, r.PageFault.Address));
        Assert.Equal(2, crlf.Records[1].LineNumber);
    }

    [Fact]
    public void A_leading_byte_order_mark_is_ignored()
    {
        byte[] withBom = [0xEF, 0xBB, 0xBF, .. Encoding.ASCII.GetBytes(Fault + "\n")];
        var result = TestTraces.Parse(withBom, PerfParseMode.Strict);
        Assert.Null(result.Error);
        Assert.Equal(0x55b75d56f04cUL, Assert.Single(result.Records).PageFault.Address);
    }

    [Theory]
    [InlineData("529.634191:", 529_634_191_000L)]
    [InlineData("0.000001:", 1_000L)]
    [InlineData("1.5:", 1_500_000_000L)]
    [InlineData("12.123456789:", 12_123_456_789L)]
    [InlineData("9223372035.999999999:", 9_223_372_035_999_999_999L)]
    public void Time_is_converted_exactly(string time, long expectedNs)
    {
        var result = TestTraces.ParseStrict($"16335 {time} page-faults: 1000\n");
        Assert.Null(result.Error);
        Assert.Equal(expectedNs, Assert.Single(result.Records).TimeNs);
    }

    [Fact]
    public void Page_fault_fields()
    {
        var result = TestTraces.ParseStrict("    7   3.000002: page-faults:                0\n16340   4.1: faults: 0x7F29D5BF8000\n1 1.0: page-faults:u: 10\n");
        Assert.Null(result.Error);
        Assert.Equal(
            [
                new PerfRecord(new PerfPageFault(1, 7, 3_000_002_000, 0)),
                new PerfRecord(new PerfPageFault(2, 16340, 4_100_000_000, 0x7f29d5bf8000)),
                new PerfRecord(new PerfPageFault(3, 1, 1_000_000_000, 0x10)),
            ],
            result.Records);
    }

    [Theory]
    [InlineData("//anon", PerfMappingKind.Anon)]
    [InlineData("[stack]", PerfMappingKind.Stack)]
    [InlineData("[stack:16337]", PerfMappingKind.Stack)]
    [InlineData("[heap]", PerfMappingKind.Heap)]
    [InlineData("[vdso]", PerfMappingKind.Special)]
    [InlineData("[vvar]", PerfMappingKind.Special)]
    [InlineData("[vvar_vclock]", PerfMappingKind.Special)]
    [InlineData("[uprobes]", PerfMappingKind.Special)]
    [InlineData("[anon:my region]", PerfMappingKind.Anon)]
    [InlineData("/usr/lib/x86_64-linux-gnu/libc.so.6", PerfMappingKind.File)]
    [InlineData("/memfd:shm (deleted)", PerfMappingKind.File)]
    [InlineData("/tmp/naïve name.so", PerfMappingKind.File)]
    public void Mapping_kind_comes_from_the_name(string name, PerfMappingKind kind)
    {
        var mmap = SingleMmap(Mmap2("rw-p", name));
        Assert.Equal(kind, mmap.Kind);
        Assert.Equal(name, mmap.Name);
    }

    [Theory]
    [InlineData("rw-p", PerfProtection.Read | PerfProtection.Write)]
    [InlineData("r-xp", PerfProtection.Read | PerfProtection.Exec)]
    [InlineData("---p", PerfProtection.None)]
    [InlineData("rwxs", PerfProtection.Read | PerfProtection.Write | PerfProtection.Exec | PerfProtection.Shared)]
    [InlineData("r--s", PerfProtection.Read | PerfProtection.Shared)]
    public void Protection_flags(string text, PerfProtection expected)
    {
        var mmap = SingleMmap(Mmap2(text, "/dev/shm/x"));
        Assert.Equal(expected, mmap.Protection);
        Assert.Equal(text[3] == 's', mmap.IsShared);
    }

    [Fact]
    public void Mmap2_with_build_id_and_old_mmap_records()
    {
        var withBuildId = SingleMmap(Mmap2("r-xp", "/lib/libc.so.6", "0x26000 <4a1e8c1f7bd0b0a3b5bd0c2e1b6b0a1c2d3e4f50>"));
        Assert.Equal(0x26000UL, withBuildId.PageOffset);
        Assert.Equal(0x7f29d9913000UL, withBuildId.Start);

        var old = SingleMmap("  123   1.000000: PERF_RECORD_MMAP 120/123: [0x400000(0x1000) @ 0]: x /bin/true");
        Assert.Equal(new PerfMmap(1, 123, 120, 1_000_000_000, 0x400000, 0x1000, 0, PerfProtection.Read | PerfProtection.Exec, PerfMappingKind.File, "/bin/true"), old);

        var oldData = SingleMmap("  123   1.000000: PERF_RECORD_MMAP 123/123: [0x600000(0x2000) @ 0x1000]: r /bin/true");
        Assert.Equal(PerfProtection.Read, oldData.Protection);
        Assert.Equal(0x1000UL, oldData.PageOffset);
    }

    [Fact]
    public void Mapping_names_are_shared_not_reallocated()
    {
        var result = TestTraces.ParseStrict(Mmap2("r--p", "/usr/lib/a.so") + "\n" + Mmap2("r-xp", "/usr/lib/a.so") + "\n");
        Assert.Null(result.Error);
        Assert.Same(result.Records[0].Mmap.Name, result.Records[1].Mmap.Name);
    }

    [Theory]
    [InlineData("    0     0.000000: PERF_RECORD_MMAP -1/0: [0xffffffff81000000(0x120bb08) @ 0xffffffff81000000]: x [kernel.kallsyms]_text", PerfSkipReason.Kernel)]
    [InlineData("16335   529.634191: page-faults:     ffffffff81234567", PerfSkipReason.Kernel)]
    [InlineData("16335   529.634191: page-faults:     ffff800000000000", PerfSkipReason.Kernel)]
    [InlineData("    0   529.634191: page-faults:     55b75d56f04c", PerfSkipReason.Kernel)]
    [InlineData("16335   529.634454: PERF_RECORD_MMAP2 16335/16335: [0xffffffffff600000(0x1000) @ 0 00:00 0 0]: --xp [vsyscall]", PerfSkipReason.Kernel)]
    [InlineData("# ========", PerfSkipReason.Comment)]
    [InlineData("16335   529.634000: PERF_RECORD_COMM: threads4:16335/16335", PerfSkipReason.OtherRecord)]
    [InlineData("16335   529.634000: PERF_RECORD_LOST lost 12", PerfSkipReason.LostRecord)]
    public void Benign_lines_are_skipped_and_counted_even_in_strict_mode(string line, PerfSkipReason reason)
    {
        Assert.False(reason.IsError());
        var strict = TestTraces.ParseStrict(line + "\n" + Fault + "\n");
        Assert.Null(strict.Error);
        Assert.Equal(2, Assert.Single(strict.Records).LineNumber);
        Assert.Equal(1, strict.Stats.SkippedFor(reason));
        Assert.Equal(1, strict.Stats.Skipped);
    }

    [Theory]
    [InlineData("13135 26591.581733: PERF_RECORD_FORK(13137:13137):(13135:13135)", PerfTaskEventKind.Fork, 13135, 13135, 13137, 13137)]
    [InlineData("13135/13135 26591.581733: PERF_RECORD_FORK(13137:13137):(13135:13135)", PerfTaskEventKind.Fork, 13135, 13135, 13137, 13137)]
    [InlineData("16337   529.634800: PERF_RECORD_FORK(16338:16338):(16337:16337)", PerfTaskEventKind.Fork, 16337, 16337, 16338, 16338)]
    [InlineData("16335   529.634800: PERF_RECORD_FORK(16335:16340):(16335:16335)", PerfTaskEventKind.Fork, 16335, 16335, 16335, 16340)]
    [InlineData("16337   529.731000: PERF_RECORD_EXIT(16337:16337):(16335:16335)", PerfTaskEventKind.Exit, 16337, 16337, 0, 0)]
    [InlineData("16335   529.634000: PERF_RECORD_COMM exec: threads4:16335/16335", PerfTaskEventKind.Exec, 16335, 16335, 0, 0)]
    [InlineData("16335   529.634000: PERF_RECORD_COMM exec: Web Content:x:16335/16336", PerfTaskEventKind.Exec, 16336, 16335, 0, 0)]
    public void Task_events_are_records_naming_the_process_and_thread(string line, PerfTaskEventKind kind, int tid, int pid, int childPid, int childTid)
    {
        // perf script --show-task-events: what makes processes (fork without CLONE_VM) and replaces their mm (exec).
        var strict = TestTraces.ParseStrict(line + "\n" + Fault + "\n");
        Assert.Null(strict.Error);
        Assert.Equal(2, strict.Records.Count);
        var e = strict.Records[0].Task;
        Assert.Equal(PerfRecordKind.Task, strict.Records[0].Kind);
        Assert.Equal((kind, tid, pid, childPid, childTid), (e.Kind, e.Tid, e.Pid, e.ChildPid, e.ChildTid));
        Assert.Equal(kind == PerfTaskEventKind.Fork && childPid != pid, e.IsProcessFork);
        Assert.Equal(0, strict.Stats.Skipped);
    }

    [Theory]
    [InlineData("13135 26591.581733: PERF_RECORD_FORK(13137:13137)", "fork")]
    [InlineData("13135 26591.581733: PERF_RECORD_FORK(13137:x):(13135:13135)", "fork tid")]
    [InlineData("13135 26591.581925: PERF_RECORD_COMM exec: gcc:13137/x", "exec tid")]
    public void A_malformed_task_event_names_its_field(string line, string field)
    {
        var strict = TestTraces.ParseStrict(line + "\n" + Fault + "\n");
        var error = Assert.IsType<PerfTraceFormatException>(strict.Error);
        Assert.Equal(field, error.Field);
        Assert.Equal(1, error.LineNumber);
    }

    [Fact]
    public void Reason_names_are_stable_kebab_case()
    {
        string[] expected =
        [
            "kernel", "comment", "other-record", "lost-record", "empty-line", "truncated", "bad-hex", "bad-number",
            "bad-protection", "bad-syntax", "unknown-event", "binary-garbage", "line-too-long", "corrupt-stream", "no-records",
        ];
        Assert.Equal(expected, Enum.GetValues<PerfSkipReason>().Select(r => r.Name()));
        foreach (string name in expected)
        {
            Assert.True(PerfSkipReasons.TryParse(name, out var reason));
            Assert.Equal(name, reason.Name());
        }
    }
}
