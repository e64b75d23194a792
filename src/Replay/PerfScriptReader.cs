// Models reading a `perf record -e page-faults -c 1 -d` trace printed by
// `perf script --show-mmap-events --show-task-events -F tid,time,addr,event` (plain or gzip): a streaming
// pull parser that turns each user line into a PerfMmap, PerfPageFault or PerfTaskEvent (fork, exec,
// exit), skips and counts kernel lines and other records, and
// either throws on (strict) or skips and counts (lenient) malformed lines. It parses bytes by hand
// over spans of one reused buffer and allocates only for mapping names (cached).
using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace DistEmu.Replay;

public enum PerfParseMode
{
    /// <summary>The first malformed line throws <see cref="PerfTraceFormatException"/>; an empty trace is an error.</summary>
    Strict = 0,

    /// <summary>Malformed lines are skipped and counted in <see cref="PerfScriptReader.Stats"/>.</summary>
    Lenient = 1,
}

public sealed record PerfScriptReaderOptions
{
    public const int DefaultMaxLineLength = 4096;

    public static PerfScriptReaderOptions StrictDefault { get; } = new();

    public static PerfScriptReaderOptions LenientDefault { get; } = new() { Mode = PerfParseMode.Lenient };

    public PerfParseMode Mode { get; init; } = PerfParseMode.Strict;

    /// <summary>Longer lines (in bytes, without the '\n') are malformed (<c>line-too-long</c>). At least 64.</summary>
    public int MaxLineLength { get; init; } = DefaultMaxLineLength;

    /// <summary>Name used in error messages; defaults to the path for <see cref="PerfScriptReader.Open"/>, else <c>&lt;stream&gt;</c>.</summary>
    public string? SourceName { get; init; }

    /// <summary>Leave the stream open when the reader is disposed.</summary>
    public bool LeaveOpen { get; init; }
}

/// <summary>
/// Streaming reader for perf script page-fault traces. Use <see cref="TryRead"/> in a loop (no allocation
/// per line) or <see cref="ReadAll"/>. Not thread-safe.
/// </summary>
public sealed class PerfScriptReader : IDisposable
{
    /// <summary>First address of the kernel half of the x86-64 address space.</summary>
    public const ulong KernelHalfStart = 0xffff_8000_0000_0000;

    private const int NameCacheLimit = 4096;
    private const string AnonName = "//anon";
    private const string StackName = "[stack]";
    private const string HeapName = "[heap]";
    private const string VdsoName = "[vdso]";
    private const string VvarName = "[vvar]";
    private const string VvarVclockName = "[vvar_vclock]";

    private static readonly long[] FractionScale =
        [0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

    /// <summary>Bytes that end a field when quoting a bad hex field.</summary>
    private static readonly SearchValues<byte> FieldEnd = SearchValues.Create(" \t()[]@:/"u8);

    private static readonly SearchValues<byte> RecordNameChars = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"u8);

    /// <summary>PERF_RECORD_* kinds perf script can print that this reader deliberately skips.</summary>
    private static readonly string[] OtherRecordNames =
    [
        "COMM", "EXIT", "FORK", "THROTTLE", "UNTHROTTLE", "READ", "SAMPLE", "AUX", "ITRACE_START",
        "SWITCH", "SWITCH_CPU_WIDE", "NAMESPACES", "KSYMBOL", "BPF_EVENT", "CGROUP", "TEXT_POKE",
        "AUX_OUTPUT_HW_ID", "FINISHED_ROUND", "FINISHED_INIT", "ID_INDEX", "AUXTRACE_INFO", "AUXTRACE",
        "AUXTRACE_ERROR", "THREAD_MAP", "CPU_MAP", "STAT_CONFIG", "STAT", "STAT_ROUND", "EVENT_UPDATE",
        "TIME_CONV", "HEADER_FEATURE", "COMPRESSED", "COMPRESSED2", "HEADER_ATTR", "HEADER_EVENT_TYPE",
        "HEADER_TRACING_DATA", "HEADER_BUILD_ID", "SCHEDSTAT_CPU", "SCHEDSTAT_DOMAIN", "BPF_METADATA",
    ];

    private readonly ByteLineSource _source;
    private readonly PerfParseMode _mode;
    private readonly int _maxLineLength;
    private readonly char[] _nameChars;
    private readonly Dictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _nameLookup;
    private bool _done;
    private bool _disposed;

    // Failure of the line being parsed (set by Fail, read by TryRead).
    private PerfSkipReason _failReason;
    private string _failField = string.Empty;
    private int _failStart;
    private int _failLength;

    public PerfScriptReader(Stream stream, PerfScriptReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        options ??= PerfScriptReaderOptions.StrictDefault;
        if (options.MaxLineLength < 64)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxLineLength, "MaxLineLength must be at least 64.");
        }

        _mode = options.Mode;
        _maxLineLength = options.MaxLineLength;
        SourceName = options.SourceName ?? "<stream>";
        _source = new ByteLineSource(stream, options.LeaveOpen, _maxLineLength);
        _nameChars = new char[_maxLineLength];
        _nameLookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public PerfScriptReader(Stream stream, PerfParseMode mode)
        : this(stream, mode == PerfParseMode.Strict ? PerfScriptReaderOptions.StrictDefault : PerfScriptReaderOptions.LenientDefault)
    {
    }

    /// <summary>Name used in error messages.</summary>
    public string SourceName { get; }

    public PerfParseMode Mode => _mode;

    /// <summary>Counters so far; final once <see cref="TryRead"/> returned false.</summary>
    public PerfScriptStats Stats { get; } = new();

    /// <summary>True once the input turned out to be gzip (known after the first read).</summary>
    public bool IsGzip => _source.IsGzip;

    /// <summary>Opens a trace file (plain or gzip) for streaming; error messages name <paramref name="path"/>.</summary>
    public static PerfScriptReader Open(string path, PerfScriptReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= PerfScriptReaderOptions.StrictDefault;
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        try
        {
            return new PerfScriptReader(stream, options with { SourceName = options.SourceName ?? path, LeaveOpen = false });
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    public static PerfScriptReader Open(string path, PerfParseMode mode) =>
        Open(path, mode == PerfParseMode.Strict ? PerfScriptReaderOptions.StrictDefault : PerfScriptReaderOptions.LenientDefault);

    /// <summary>
    /// Reads the next user record. Returns false at the end of the trace (and after a strict-mode
    /// exception). Strict mode throws <see cref="PerfTraceFormatException"/> at the first malformed
    /// line, and at the end if the trace held no record at all.
    /// </summary>
    public bool TryRead(out PerfRecord record)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (!_done)
        {
            var status = _source.ReadLine(out var line);
            switch (status)
            {
                case LineStatus.Line:
                    {
                        long lineNumber = ++Stats.LinesRead;
                        if (lineNumber == 1 && line.StartsWith("\uFEFF"u8))
                        {
                            line = line[3..]; // a UTF-8 byte order mark added by some editor
                        }

                        var kind = ParseLine(line, lineNumber, out record);
                        if (kind == PerfRecordKind.Mmap)
                        {
                            Stats.Mmaps++;
                            Stats.SawMappingOf(record.Mmap.Pid);
                            return true;
                        }

                        if (kind == PerfRecordKind.PageFault)
                        {
                            Stats.PageFaults++;
                            return true;
                        }

                        if (kind == PerfRecordKind.Task)
                        {
                            Stats.TaskEvents++;
                            if (record.Task.IsProcessFork)
                            {
                                Stats.ProcessForks++;
                            }

                            return true;
                        }

                        Skip(_failReason, _failField, line.Slice(_failStart, _failLength), lineNumber);
                        break;
                    }

                case LineStatus.TooLong:
                    Skip(PerfSkipReason.LineTooLong, "line", line, ++Stats.LinesRead);
                    break;

                case LineStatus.CorruptStream:
                    Skip(PerfSkipReason.CorruptStream, "stream", line, ++Stats.LinesRead);
                    break;

                default:
                    _done = true;
                    if (_mode == PerfParseMode.Strict && Stats.Records == 0)
                    {
                        throw PerfTraceFormatException.NoRecords(SourceName, Stats.LinesRead, Stats.Skipped);
                    }

                    break;
            }
        }

        record = default;
        return false;
    }

    /// <summary>Enumerates the remaining records (same rules as <see cref="TryRead"/>).</summary>
    public IEnumerable<PerfRecord> ReadAll()
    {
        while (TryRead(out var record))
        {
            yield return record;
        }
    }

    /// <summary>Reads a whole trace, counting only; returns the final stats.</summary>
    public PerfScriptStats Drain()
    {
        while (TryRead(out _))
        {
        }

        return Stats;
    }

    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _source.Dispose();
        }
    }

    private void Skip(PerfSkipReason reason, string field, ReadOnlySpan<byte> text, long lineNumber)
    {
        if (_mode == PerfParseMode.Strict && reason.IsError())
        {
            _done = true;
            throw PerfTraceFormatException.ForLine(
                SourceName, lineNumber, reason, field, text, _maxLineLength, _source.CorruptDetail, _source.CorruptException);
        }

        Stats.CountSkip(reason);
    }

    private PerfRecordKind Fail(PerfSkipReason reason, string field, int start, int length)
    {
        _failReason = reason;
        _failField = field;
        _failStart = start;
        _failLength = length;
        return PerfRecordKind.None;
    }

    private PerfRecordKind FailTruncated(string field, ReadOnlySpan<byte> s) =>
        Fail(PerfSkipReason.Truncated, field, 0, s.Length);

    private PerfRecordKind Ignore(PerfSkipReason reason) => Fail(reason, string.Empty, 0, 0);

    private PerfRecordKind ParseLine(ReadOnlySpan<byte> s, long lineNumber, out PerfRecord record)
    {
        record = default;
        if (s.Length > 0 && s[^1] == (byte)'\r')
        {
            s = s[..^1];
        }

        int odd = s.IndexOfAnyExceptInRange((byte)0x20, (byte)0x7E);
        if (odd >= 0 && IsGarbage(s, odd))
        {
            return Fail(PerfSkipReason.BinaryGarbage, "line", 0, s.Length);
        }

        int pos = SkipSpace(s, 0);
        if (pos == s.Length)
        {
            return Fail(PerfSkipReason.EmptyLine, "line", 0, s.Length);
        }

        if (s[pos] == (byte)'#')
        {
            return Ignore(PerfSkipReason.Comment);
        }

        // TID, or PID/TID (-F pid,tid)
        int end = TokenEnd(s, pos);
        var tidToken = s[pos..end];
        int slash = tidToken.IndexOf((byte)'/');
        if (slash >= 0)
        {
            tidToken = tidToken[(slash + 1)..];
        }

        if (!TryParseInt(tidToken, out int lineTid) || (slash >= 0 && !TryParseInt(s[pos..(pos + slash)], out _)))
        {
            return Fail(PerfSkipReason.BadNumber, "tid", pos, end - pos);
        }

        // seconds.fraction:
        pos = SkipSpace(s, end);
        if (pos == s.Length)
        {
            return FailTruncated("time", s);
        }

        end = TokenEnd(s, pos);
        if (!TryParseTime(s[pos..end], out long timeNs))
        {
            return Fail(PerfSkipReason.BadNumber, "time", pos, end - pos);
        }

        // event
        pos = SkipSpace(s, end);
        if (pos == s.Length)
        {
            return FailTruncated("event", s);
        }

        end = TokenEnd(s, pos);
        var ev = s[pos..end];
        if (IsPageFaultEvent(ev))
        {
            return ParsePageFault(s, end, lineNumber, lineTid, timeNs, out record);
        }

        if (ev.SequenceEqual("PERF_RECORD_MMAP2"u8))
        {
            return ParseMmap(s, end, lineNumber, timeNs, mmap2: true, out record);
        }

        if (ev.SequenceEqual("PERF_RECORD_MMAP"u8))
        {
            return ParseMmap(s, end, lineNumber, timeNs, mmap2: false, out record);
        }

        if (ev.StartsWith("PERF_RECORD_"u8))
        {
            var name = ev["PERF_RECORD_".Length..];
            int nameEnd = name.IndexOfAnyExcept(RecordNameChars);
            if (nameEnd >= 0)
            {
                name = name[..nameEnd];
            }

            if (name.SequenceEqual("LOST"u8) || name.SequenceEqual("LOST_SAMPLES"u8))
            {
                return Ignore(PerfSkipReason.LostRecord);
            }

            if (name.SequenceEqual("FORK"u8) || name.SequenceEqual("EXIT"u8))
            {
                return ParseForkOrExit(s, pos + "PERF_RECORD_".Length + name.Length, lineNumber, timeNs, name.SequenceEqual("FORK"u8), out record);
            }

            if (name.SequenceEqual("COMM"u8) && s[end..].TrimStart((byte)' ').StartsWith("exec:"u8))
            {
                return ParseExec(s, end, lineNumber, timeNs, out record);
            }

            if (IsOtherRecordName(name))
            {
                return Ignore(PerfSkipReason.OtherRecord);
            }
        }

        return Fail(PerfSkipReason.UnknownEvent, "event", pos, end - pos);
    }

    private PerfRecordKind ParsePageFault(ReadOnlySpan<byte> s, int pos, long lineNumber, int tid, long timeNs, out PerfRecord record)
    {
        record = default;
        pos = SkipSpace(s, pos);
        if (pos == s.Length)
        {
            return FailTruncated("address", s);
        }

        int end = TokenEnd(s, pos);
        if (!TryParseHexToken(s[pos..end], out ulong address))
        {
            return Fail(PerfSkipReason.BadHex, "address", pos, end - pos);
        }

        int rest = SkipSpace(s, end);
        if (rest != s.Length)
        {
            return Fail(PerfSkipReason.BadSyntax, "address", pos, s.Length - pos);
        }

        if (tid <= 0 || address >= KernelHalfStart)
        {
            return Ignore(PerfSkipReason.Kernel);
        }

        record = new PerfRecord(new PerfPageFault(lineNumber, tid, timeNs, address));
        return PerfRecordKind.PageFault;
    }

    // "(cpid:ctid):(ppid:ptid)" after PERF_RECORD_FORK; "(pid:tid):(ppid:ptid)" after PERF_RECORD_EXIT
    private PerfRecordKind ParseForkOrExit(ReadOnlySpan<byte> s, int pos, long lineNumber, long timeNs, bool fork, out PerfRecord record)
    {
        record = default;
        string field = fork ? "fork" : "exit";
        if (!Expect(s, ref pos, (byte)'(', field)
            || !ParseIntField(s, ref pos, (byte)':', field + " pid", out int pid)
            || !ParseIntField(s, ref pos, (byte)')', field + " tid", out int tid)
            || !Expect(s, ref pos, (byte)':', field)
            || !Expect(s, ref pos, (byte)'(', field)
            || !ParseIntField(s, ref pos, (byte)':', field + " parent pid", out int ppid)
            || !ParseIntField(s, ref pos, (byte)')', field + " parent tid", out int ptid))
        {
            return PerfRecordKind.None;
        }

        if (SkipSpace(s, pos) != s.Length)
        {
            return Fail(PerfSkipReason.BadSyntax, field, pos, s.Length - pos);
        }

        if (pid <= 0 || tid <= 0)
        {
            return Ignore(PerfSkipReason.Kernel); // the idle task or a kernel thread's bookkeeping
        }

        record = new PerfRecord(fork
            ? new PerfTaskEvent(lineNumber, PerfTaskEventKind.Fork, ptid, ppid, timeNs, pid, tid)
            : new PerfTaskEvent(lineNumber, PerfTaskEventKind.Exit, tid, pid, timeNs));
        return PerfRecordKind.Task;
    }

    // " exec: NAME:pid/tid" after PERF_RECORD_COMM (NAME may hold spaces and colons: pid/tid follows the last ':')
    private PerfRecordKind ParseExec(ReadOnlySpan<byte> s, int pos, long lineNumber, long timeNs, out PerfRecord record)
    {
        record = default;
        int colon = s.LastIndexOf((byte)':');
        if (colon <= pos)
        {
            return FailTruncated("exec", s);
        }

        int at = colon + 1;
        if (!ParseIntField(s, ref at, (byte)'/', "exec pid", out int pid))
        {
            return PerfRecordKind.None;
        }

        int tidEnd = TokenEnd(s, at);
        if (!TryParseInt(s[at..tidEnd], out int tid) || SkipSpace(s, tidEnd) != s.Length)
        {
            return Fail(PerfSkipReason.BadNumber, "exec tid", at, s.Length - at);
        }

        record = new PerfRecord(new PerfTaskEvent(lineNumber, PerfTaskEventKind.Exec, tid, pid, timeNs));
        return PerfRecordKind.Task;
    }

    // " pid/tid: [0xSTART(0xLEN) @ OFF maj:min ino gen]: rwxp NAME"   (MMAP2; or "<build-id>" instead of maj:min ino gen)
    // " pid/tid: [0xSTART(0xLEN) @ OFF]: x NAME"                      (MMAP)
    private PerfRecordKind ParseMmap(ReadOnlySpan<byte> s, int pos, long lineNumber, long timeNs, bool mmap2, out PerfRecord record)
    {
        record = default;
        pos = SkipSpace(s, pos);
        if (!ParseIntField(s, ref pos, (byte)'/', "pid", out int pid)
            || !ParseIntField(s, ref pos, (byte)':', "tid", out int tid))
        {
            return PerfRecordKind.None;
        }

        pos = SkipSpace(s, pos);
        if (!Expect(s, ref pos, (byte)'[', "mmap start")
            || !ParseHexField(s, ref pos, (byte)'(', "mmap start", out ulong start)
            || !ParseHexField(s, ref pos, (byte)')', "mmap length", out ulong length))
        {
            return PerfRecordKind.None;
        }

        pos = SkipSpace(s, pos);
        if (!Expect(s, ref pos, (byte)'@', "mmap offset"))
        {
            return PerfRecordKind.None;
        }

        pos = SkipSpace(s, pos);
        if (!ParseHexField(s, ref pos, mmap2 ? (byte)' ' : (byte)']', "mmap offset", out ulong pageOffset))
        {
            return PerfRecordKind.None;
        }

        if (mmap2)
        {
            // Device, inode and generation (or a build id): not modelled, but must be closed by ']'.
            int close = s[pos..].IndexOf((byte)']');
            if (close < 0)
            {
                return FailTruncated("mmap device", s);
            }

            pos += close + 1;
        }

        if (!Expect(s, ref pos, (byte)':', "protection"))
        {
            return PerfRecordKind.None;
        }

        int protStart = SkipSpace(s, pos);
        if (protStart == pos && pos < s.Length)
        {
            return Fail(PerfSkipReason.BadSyntax, "protection", pos, TokenEnd(s, pos) - pos);
        }

        if (protStart == s.Length)
        {
            return FailTruncated("protection", s);
        }

        int protEnd = TokenEnd(s, protStart);
        if (!TryParseProtection(s[protStart..protEnd], mmap2, out var protection))
        {
            return Fail(PerfSkipReason.BadProtection, "protection", protStart, protEnd - protStart);
        }

        // One separator, then the name verbatim (it may contain spaces).
        if (protEnd + 1 >= s.Length)
        {
            return FailTruncated("name", s);
        }

        var nameBytes = s[(protEnd + 1)..];
        if (pid < 0 || tid <= 0 || start >= KernelHalfStart)
        {
            return Ignore(PerfSkipReason.Kernel);
        }

        var kind = ClassifyName(nameBytes);
        string name = GetName(nameBytes);
        record = new PerfRecord(new PerfMmap(lineNumber, tid, pid, timeNs, start, length, pageOffset, protection, kind, name));
        return PerfRecordKind.Mmap;
    }

    private bool Expect(ReadOnlySpan<byte> s, ref int pos, byte c, string field)
    {
        if (pos >= s.Length)
        {
            FailTruncated(field, s);
            return false;
        }

        if (s[pos] != c)
        {
            int tokenStart = SkipSpace(s, pos);
            Fail(PerfSkipReason.BadSyntax, field, tokenStart, TokenEnd(s, tokenStart) - tokenStart);
            return false;
        }

        pos++;
        return true;
    }

    /// <summary>Decimal integer (optional '-') ended by <paramref name="terminator"/>, which is consumed.</summary>
    private bool ParseIntField(ReadOnlySpan<byte> s, ref int pos, byte terminator, string field, out int value)
    {
        value = 0;
        int start = pos;
        int t = s[pos..].IndexOfAny(terminator, (byte)' ', (byte)'\t');
        if (t < 0)
        {
            // No terminator: garbage if the rest is not a number prefix, else the line was cut.
            if (start == s.Length || TryParseInt(s[start..], out _) || s[start..].SequenceEqual("-"u8))
            {
                FailTruncated(field, s);
            }
            else
            {
                Fail(PerfSkipReason.BadNumber, field, start, s.Length - start);
            }

            return false;
        }

        int end = start + t;
        if (s[end] != terminator)
        {
            if (TryParseInt(s[start..end], out _))
            {
                Fail(PerfSkipReason.BadSyntax, field, start, end - start);
            }
            else
            {
                Fail(PerfSkipReason.BadNumber, field, start, end - start);
            }

            return false;
        }

        if (!TryParseInt(s[start..end], out value))
        {
            Fail(PerfSkipReason.BadNumber, field, start, end - start);
            return false;
        }

        pos = end + 1;
        return true;
    }

    /// <summary>Hex number (optional 0x) ended by <paramref name="terminator"/> (' ' also accepts a tab), which is consumed.</summary>
    private bool ParseHexField(ReadOnlySpan<byte> s, ref int pos, byte terminator, string field, out ulong value)
    {
        int start = pos;
        int p = pos;
        if (p + 1 < s.Length && s[p] == (byte)'0' && (s[p + 1] | 0x20) == (byte)'x')
        {
            p += 2;
        }

        int digits = p;
        value = 0;
        while (p < s.Length)
        {
            int d = HexValue(s[p]);
            if (d < 0)
            {
                break;
            }

            if (value > ulong.MaxValue >> 4)
            {
                return FailHex(s, start, field);
            }

            value = (value << 4) | (uint)d;
            p++;
        }

        if (p == s.Length)
        {
            FailTruncated(field, s);
            return false;
        }

        byte c = s[p];
        bool terminated = c == terminator || (terminator == (byte)' ' && c == (byte)'\t');
        if (p == digits || !terminated)
        {
            if (p == digits || char.IsAsciiLetterOrDigit((char)c))
            {
                return FailHex(s, start, field);
            }

            Fail(PerfSkipReason.BadSyntax, field, start, p + 1 - start);
            return false;
        }

        pos = p + 1;
        return true;
    }

    private bool FailHex(ReadOnlySpan<byte> s, int start, string field)
    {
        int end = s[start..].IndexOfAny(FieldEnd);
        Fail(PerfSkipReason.BadHex, field, start, end < 0 ? s.Length - start : end);
        return false;
    }

    private static bool IsGarbage(ReadOnlySpan<byte> s, int from)
    {
        bool nonAscii = false;
        for (int i = from; i < s.Length; i++)
        {
            byte b = s[i];
            if (b >= 0x80)
            {
                nonAscii = true;
            }
            else if ((b < 0x20 && b != (byte)'\t') || b == 0x7F)
            {
                return true;
            }
        }

        return nonAscii && !Utf8.IsValid(s);
    }

    private static int SkipSpace(ReadOnlySpan<byte> s, int pos)
    {
        while (pos < s.Length && (s[pos] == (byte)' ' || s[pos] == (byte)'\t'))
        {
            pos++;
        }

        return pos;
    }

    private static int TokenEnd(ReadOnlySpan<byte> s, int pos)
    {
        int i = s[pos..].IndexOfAny((byte)' ', (byte)'\t');
        return i < 0 ? s.Length : pos + i;
    }

    private static bool TryParseInt(ReadOnlySpan<byte> s, out int value)
    {
        value = 0;
        bool negative = s.Length > 0 && s[0] == (byte)'-';
        if (negative)
        {
            s = s[1..];
        }

        if (s.Length == 0 || s.Length > 10)
        {
            return false;
        }

        long v = 0;
        foreach (byte b in s)
        {
            uint d = (uint)(b - '0');
            if (d > 9)
            {
                return false;
            }

            v = (v * 10) + d;
        }

        if (negative)
        {
            v = -v;
        }

        if (v is > int.MaxValue or < int.MinValue)
        {
            return false;
        }

        value = (int)v;
        return true;
    }

    /// <summary>"SECONDS.FRACTION:" with 1..9 fraction digits, converted exactly to nanoseconds.</summary>
    private static bool TryParseTime(ReadOnlySpan<byte> s, out long ns)
    {
        ns = 0;
        if (s.Length < 4 || s[^1] != (byte)':')
        {
            return false;
        }

        s = s[..^1];
        int dot = s.IndexOf((byte)'.');
        if (dot <= 0 || dot > 10)
        {
            return false;
        }

        int fractionDigits = s.Length - dot - 1;
        if (fractionDigits is < 1 or > 9)
        {
            return false;
        }

        long seconds = 0;
        for (int i = 0; i < dot; i++)
        {
            uint d = (uint)(s[i] - '0');
            if (d > 9)
            {
                return false;
            }

            seconds = (seconds * 10) + d;
        }

        long fraction = 0;
        for (int i = dot + 1; i < s.Length; i++)
        {
            uint d = (uint)(s[i] - '0');
            if (d > 9)
            {
                return false;
            }

            fraction = (fraction * 10) + d;
        }

        if (seconds > (long.MaxValue / 1_000_000_000) - 1)
        {
            return false;
        }

        ns = (seconds * 1_000_000_000) + (fraction * FractionScale[fractionDigits]);
        return true;
    }

    private static bool TryParseHexToken(ReadOnlySpan<byte> s, out ulong value)
    {
        value = 0;
        if (s.Length > 2 && s[0] == (byte)'0' && (s[1] | 0x20) == (byte)'x')
        {
            s = s[2..];
        }

        if (s.Length == 0)
        {
            return false;
        }

        foreach (byte b in s)
        {
            int d = HexValue(b);
            if (d < 0 || value > ulong.MaxValue >> 4)
            {
                return false;
            }

            value = (value << 4) | (uint)d;
        }

        return true;
    }

    private static int HexValue(byte b)
    {
        uint d = (uint)(b - '0');
        if (d <= 9)
        {
            return (int)d;
        }

        uint l = (uint)((b | 0x20) - 'a');
        return l <= 5 ? (int)l + 10 : -1;
    }

    private static bool IsPageFaultEvent(ReadOnlySpan<byte> ev)
    {
        if (ev.SequenceEqual("page-faults:"u8) || ev.SequenceEqual("faults:"u8))
        {
            return true;
        }

        // With modifiers, e.g. "page-faults:u:".
        ReadOnlySpan<byte> stem = ev.StartsWith("page-faults:"u8) ? ev["page-faults:".Length..]
            : ev.StartsWith("faults:"u8) ? ev["faults:".Length..] : default;
        if (stem.Length < 2 || stem[^1] != (byte)':')
        {
            return false;
        }

        foreach (byte b in stem[..^1])
        {
            if (!char.IsAsciiLetterLower((char)b))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsOtherRecordName(ReadOnlySpan<byte> name)
    {
        if (name.Length == 0)
        {
            return false;
        }

        Span<char> chars = stackalloc char[name.Length];
        for (int i = 0; i < name.Length; i++)
        {
            chars[i] = (char)name[i];
        }

        foreach (string known in OtherRecordNames)
        {
            if (chars.SequenceEqual(known))
            {
                return true;
            }
        }

        return false;
    }

    private static bool TryParseProtection(ReadOnlySpan<byte> s, bool mmap2, out PerfProtection protection)
    {
        protection = PerfProtection.None;
        if (!mmap2)
        {
            // Old PERF_RECORD_MMAP: 'x' for executable, 'r' for data.
            if (s.Length != 1)
            {
                return false;
            }

            if (s[0] == (byte)'x')
            {
                protection = PerfProtection.Read | PerfProtection.Exec;
                return true;
            }

            protection = PerfProtection.Read;
            return s[0] == (byte)'r';
        }

        if (s.Length != 4)
        {
            return false;
        }

        if (s[0] == (byte)'r')
        {
            protection |= PerfProtection.Read;
        }
        else if (s[0] != (byte)'-')
        {
            return false;
        }

        if (s[1] == (byte)'w')
        {
            protection |= PerfProtection.Write;
        }
        else if (s[1] != (byte)'-')
        {
            return false;
        }

        if (s[2] == (byte)'x')
        {
            protection |= PerfProtection.Exec;
        }
        else if (s[2] != (byte)'-')
        {
            return false;
        }

        if (s[3] == (byte)'s')
        {
            protection |= PerfProtection.Shared;
        }
        else if (s[3] != (byte)'p')
        {
            return false;
        }

        return true;
    }

    private static PerfMappingKind ClassifyName(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("//anon"u8))
        {
            return PerfMappingKind.Anon;
        }

        if (name.Length >= 2 && name[0] == (byte)'[' && name[^1] == (byte)']')
        {
            if (name.SequenceEqual("[stack]"u8) || name.StartsWith("[stack:"u8))
            {
                return PerfMappingKind.Stack;
            }

            if (name.SequenceEqual("[heap]"u8))
            {
                return PerfMappingKind.Heap;
            }

            if (name.StartsWith("[anon:"u8) || name.StartsWith("[anon_shmem:"u8))
            {
                return PerfMappingKind.Anon;
            }

            return PerfMappingKind.Special;
        }

        return PerfMappingKind.File;
    }

    /// <summary>Mapping names repeat, so the common ones are constants and the rest are cached (bounded).</summary>
    private string GetName(ReadOnlySpan<byte> name)
    {
        if (name.SequenceEqual("//anon"u8))
        {
            return AnonName;
        }

        if (name.SequenceEqual("[stack]"u8))
        {
            return StackName;
        }

        if (name.SequenceEqual("[heap]"u8))
        {
            return HeapName;
        }

        if (name.SequenceEqual("[vdso]"u8))
        {
            return VdsoName;
        }

        if (name.SequenceEqual("[vvar]"u8))
        {
            return VvarName;
        }

        if (name.SequenceEqual("[vvar_vclock]"u8))
        {
            return VvarVclockName;
        }

        // The line was validated as UTF-8, and a line is at most _maxLineLength bytes, so this fits.
        int n = Encoding.UTF8.GetChars(name, _nameChars);
        var chars = _nameChars.AsSpan(0, n);
        if (_nameLookup.TryGetValue(chars, out string? cached))
        {
            return cached;
        }

        string result = new(chars);
        if (_names.Count < NameCacheLimit)
        {
            _names[result] = result;
        }

        return result;
    }
}
