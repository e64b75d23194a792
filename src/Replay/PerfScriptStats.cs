// Models the bookkeeping of one pass over a perf script trace: how many lines were read, how many
// became records, and why every other line was skipped (stable kebab-case reason names).
namespace DistEmu.Replay;

/// <summary>
/// Why a line did not become a record. The first four are not errors (strict mode skips them too);
/// the rest are malformed input (strict mode throws <see cref="PerfTraceFormatException"/>, lenient mode
/// skips and counts). <see cref="NoRecords"/> is only ever an exception reason, never a counted skip.
/// </summary>
public enum PerfSkipReason
{
    /// <summary><c>kernel</c>: TID 0 / pid -1, or an address in the kernel half.</summary>
    Kernel = 0,

    /// <summary><c>comment</c>: a line starting with <c>#</c> (perf script --header).</summary>
    Comment,

    /// <summary><c>other-record</c>: a well-formed PERF_RECORD_* kind this reader does not model (COMM, FORK, EXIT...).</summary>
    OtherRecord,

    /// <summary><c>lost-record</c>: PERF_RECORD_LOST / LOST_SAMPLES: perf dropped events here.</summary>
    LostRecord,

    /// <summary><c>empty-line</c>: nothing but whitespace.</summary>
    EmptyLine,

    /// <summary><c>truncated</c>: the line ends before a required field.</summary>
    Truncated,

    /// <summary><c>bad-hex</c>: an address, length or offset is not a (64-bit) hex number.</summary>
    BadHex,

    /// <summary><c>bad-number</c>: tid, pid or time is not a decimal number of the expected shape.</summary>
    BadNumber,

    /// <summary><c>bad-protection</c>: the protection field is not <c>[r-][w-][x-][ps]</c>.</summary>
    BadProtection,

    /// <summary><c>bad-syntax</c>: an expected separator (<c>[</c>, <c>(</c>, <c>@</c>, <c>]:</c>...) is missing, or trailing text.</summary>
    BadSyntax,

    /// <summary><c>unknown-event</c>: an event name other than page-faults or a known PERF_RECORD_*.</summary>
    UnknownEvent,

    /// <summary><c>binary-garbage</c>: control bytes (NUL...) or invalid UTF-8.</summary>
    BinaryGarbage,

    /// <summary><c>line-too-long</c>: longer than the reader's maximum line length.</summary>
    LineTooLong,

    /// <summary><c>corrupt-stream</c>: the gzip stream is corrupt or truncated; the rest of the input is lost.</summary>
    CorruptStream,

    /// <summary><c>no-records</c>: exception reason only: the trace holds no user record at all.</summary>
    NoRecords,
}

public static class PerfSkipReasons
{
    /// <summary>Number of <see cref="PerfSkipReason"/> values.</summary>
    public const int Count = (int)PerfSkipReason.NoRecords + 1;

    private static readonly string[] Names =
    [
        "kernel", "comment", "other-record", "lost-record", "empty-line", "truncated", "bad-hex",
        "bad-number", "bad-protection", "bad-syntax", "unknown-event", "binary-garbage", "line-too-long",
        "corrupt-stream", "no-records",
    ];

    /// <summary>The stable kebab-case name of a reason (e.g. <c>bad-hex</c>).</summary>
    public static string Name(this PerfSkipReason reason) =>
        (uint)reason < (uint)Names.Length ? Names[(int)reason] : reason.ToString();

    /// <summary>True for reasons that are malformed input (strict mode throws on them).</summary>
    public static bool IsError(this PerfSkipReason reason) => reason >= PerfSkipReason.EmptyLine;

    /// <summary>Parses a kebab-case name back to the reason.</summary>
    public static bool TryParse(string name, out PerfSkipReason reason)
    {
        int i = Array.IndexOf(Names, name);
        reason = (PerfSkipReason)Math.Max(i, 0);
        return i >= 0;
    }
}

/// <summary>Counters for one <see cref="PerfScriptReader"/>. Invariant: LinesRead == Records + Skipped.</summary>
public sealed class PerfScriptStats
{
    private readonly long[] _skipped = new long[PerfSkipReasons.Count];

    /// <summary>Lines consumed so far, records and skipped ones alike (a corrupt gzip tail counts as one line).</summary>
    public long LinesRead { get; internal set; }

    public long Mmaps { get; internal set; }

    public long PageFaults { get; internal set; }

    /// <summary>Task events read (process forks, execs, exits; thread forks too).</summary>
    public long TaskEvents { get; internal set; }

    /// <summary>Of <see cref="TaskEvents"/>, forks that made a process (not a thread).</summary>
    public long ProcessForks { get; internal set; }

    private readonly HashSet<int> _mappingPids = new();

    /// <summary>Distinct processes (pids) whose mappings the trace holds: more than one without task events means a
    /// forking program recorded without <c>--show-task-events</c>.</summary>
    public int MappingProcesses => _mappingPids.Count;

    internal void SawMappingOf(int pid) => _mappingPids.Add(pid);

    public long Records => Mmaps + PageFaults + TaskEvents;

    /// <summary>Total skipped lines over all reasons (kernel lines included).</summary>
    public long Skipped
    {
        get
        {
            long total = 0;
            foreach (long n in _skipped)
            {
                total += n;
            }

            return total;
        }
    }

    /// <summary>Skipped lines counted under one reason.</summary>
    public long SkippedFor(PerfSkipReason reason) =>
        (uint)reason < (uint)_skipped.Length ? _skipped[(int)reason] : 0;

    /// <summary>Non-zero skip counts keyed by kebab-case reason name, in reason order.</summary>
    public IReadOnlyDictionary<string, long> SkippedByReason
    {
        get
        {
            var result = new Dictionary<string, long>();
            for (int i = 0; i < _skipped.Length; i++)
            {
                if (_skipped[i] != 0)
                {
                    result[((PerfSkipReason)i).Name()] = _skipped[i];
                }
            }

            return result;
        }
    }

    internal void CountSkip(PerfSkipReason reason) => _skipped[(int)reason]++;

    public override string ToString()
    {
        var parts = string.Join(", ", SkippedByReason.Select(kv => $"{kv.Key}={kv.Value}"));
        return $"lines={LinesRead} mmaps={Mmaps} page-faults={PageFaults} skipped={Skipped} [{parts}]";
    }
}
