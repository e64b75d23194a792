// Models a malformed perf script trace in strict mode: which source, which 1-based line, which field,
// and the offending text (escaped and capped so binary garbage stays printable).
using System.Text;

namespace DistEmu.Replay;

/// <summary>
/// Thrown by <see cref="PerfScriptReader"/> in strict mode at the first malformed line, e.g.
/// <c>threads4.perf.txt:17: bad hex in field 'address': "55b75zz"</c>.
/// </summary>
public sealed class PerfTraceFormatException : FormatException
{
    /// <summary>Longest offending text kept in the message, in input bytes.</summary>
    public const int MaxTextBytes = 80;

    public PerfTraceFormatException()
        : this("malformed perf script trace")
    {
    }

    public PerfTraceFormatException(string message)
        : base(message)
    {
        SourceName = "<stream>";
        Field = string.Empty;
        OffendingText = string.Empty;
        Reason = PerfSkipReason.BadSyntax;
    }

    public PerfTraceFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
        SourceName = "<stream>";
        Field = string.Empty;
        OffendingText = string.Empty;
        Reason = PerfSkipReason.BadSyntax;
    }

    public PerfTraceFormatException(
        string sourceName, long lineNumber, PerfSkipReason reason, string field, string offendingText, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        SourceName = sourceName;
        LineNumber = lineNumber;
        Reason = reason;
        Field = field;
        OffendingText = offendingText;
    }

    /// <summary>The file path given to the reader, or <c>&lt;stream&gt;</c>.</summary>
    public string SourceName { get; }

    /// <summary>1-based line number (for <see cref="PerfSkipReason.NoRecords"/>: the number of lines read).</summary>
    public long LineNumber { get; }

    /// <summary>Why the line is malformed.</summary>
    public PerfSkipReason Reason { get; }

    /// <summary>The field that failed: <c>address</c>, <c>time</c>, <c>tid</c>, <c>mmap length</c>, <c>protection</c>, <c>event</c>, <c>line</c>...</summary>
    public string Field { get; }

    /// <summary>The offending text, escaped (<c>\x00</c>) and capped at <see cref="MaxTextBytes"/> bytes.</summary>
    public string OffendingText { get; }

    internal static PerfTraceFormatException ForLine(
        string sourceName, long lineNumber, PerfSkipReason reason, string field, ReadOnlySpan<byte> text, int maxLineLength, string? detail = null, Exception? inner = null)
    {
        // A truncated line is best shown by its end, where the missing field should have been.
        string escaped = reason == PerfSkipReason.Truncated ? EscapeTail(text) : Escape(text);
        string what = reason switch
        {
            PerfSkipReason.Truncated => "truncated line, missing",
            PerfSkipReason.BadHex => "bad hex in",
            PerfSkipReason.BadNumber => "bad number in",
            PerfSkipReason.BadProtection => "bad protection in",
            PerfSkipReason.BadSyntax => "bad syntax in",
            PerfSkipReason.UnknownEvent => "unknown event in",
            PerfSkipReason.BinaryGarbage => "binary garbage in",
            PerfSkipReason.EmptyLine => "empty line in",
            PerfSkipReason.LineTooLong => $"line longer than {maxLineLength} bytes in",
            PerfSkipReason.CorruptStream => $"corrupt or truncated gzip stream ({detail ?? "unknown"}) at",
            _ => reason.Name() + " in",
        };
        string message = $"{sourceName}:{lineNumber}: {what} field '{field}': \"{escaped}\"";
        return new PerfTraceFormatException(sourceName, lineNumber, reason, field, escaped, message, inner);
    }

    internal static PerfTraceFormatException NoRecords(string sourceName, long linesRead, long skipped) =>
        new(sourceName, linesRead, PerfSkipReason.NoRecords, "records", string.Empty,
            $"{sourceName}:{linesRead}: no records: {linesRead} lines read, {skipped} skipped, no user mmap or page fault");

    /// <summary>Like <see cref="Escape"/> but keeps the last <see cref="MaxTextBytes"/> bytes, prefixed by "...".</summary>
    internal static string EscapeTail(ReadOnlySpan<byte> text) =>
        text.Length <= MaxTextBytes ? Escape(text) : "..." + Escape(text[^MaxTextBytes..]);

    /// <summary>Printable ASCII as is; quotes, backslashes and every other byte as an escape.</summary>
    internal static string Escape(ReadOnlySpan<byte> text)
    {
        var sb = new StringBuilder(Math.Min(text.Length, MaxTextBytes) + 8);
        int n = Math.Min(text.Length, MaxTextBytes);
        for (int i = 0; i < n; i++)
        {
            byte b = text[i];
            switch (b)
            {
                case (byte)'"':
                    sb.Append("\\\"");
                    break;
                case (byte)'\\':
                    sb.Append("\\\\");
                    break;
                case (byte)'\t':
                    sb.Append("\\t");
                    break;
                case >= 0x20 and < 0x7F:
                    sb.Append((char)b);
                    break;
                default:
                    sb.Append("\\x").Append(b.ToString("x2"));
                    break;
            }
        }

        if (text.Length > n)
        {
            sb.Append("...");
        }

        return sb.ToString();
    }
}
