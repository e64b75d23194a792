// Models what a replay tells its user (replay.json): lines read, ops by type, skipped lines by reason,
// the regions it had to infer, where each TID ran, and the caveats of the mapping from trace to ops.
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace DistEmu.Replay;

/// <summary>The outcome of a replay; <see cref="ToJson"/> is the content of <c>replay.json</c>.</summary>
public sealed class ReplayReport
{
    public const string FaultKindNote = "page-fault kind is not recorded by perf, so it is inferred from the trace: the first fault of a page that faults again in the same mapping epoch (no MMAP2 over it in between) is a read (it mapped the zero page or a read-only page-cache page; the later write faults in do_wp_page), every other fault is a write unless the VMA is read-only";

    public required string Trace { get; init; }

    public long LinesRead { get; init; }

    /// <summary>Ops planned from the trace for one copy, by type: mmap, access_read, access_write, compute.</summary>
    public required IReadOnlyDictionary<string, long> Ops { get; init; }

    /// <summary>Skipped lines by reason: the parser's reasons (kernel, comment...) plus unmapped, prot-none, empty-mapping.</summary>
    public required IReadOnlyDictionary<string, long> Skipped { get; init; }

    public required IReadOnlyList<InferredRegion> InferredRegions { get; init; }

    /// <summary>Task key (the TID, or <c>TID#k</c> for copy k &gt; 0) → CPU.</summary>
    public required IReadOnlyDictionary<string, int> TidCpu { get; init; }

    public required IReadOnlyList<string> Notes { get; init; }

    public int Replicate { get; init; } = 1;

    public bool SharedMm { get; init; }

    public int Tasks { get; init; }

    public int Mms { get; init; }

    /// <summary>Forks of a new process the trace holds but this replay ran as threads of one process (orleans, --shared-mm).</summary>
    public long UnreplayedProcessForks { get; init; }

    /// <summary>Processes whose mappings the trace holds while it has no fork of a new process: recorded without task events.</summary>
    public int ProcessesWithoutTaskEvents { get; init; }

    /// <summary>What the run itself measured: emulated faults, signals, time, ordering and read-ahead waits, VMAs.</summary>
    public required ReplayRunFigures Run { get; init; }

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("trace", Trace);
            w.WriteNumber("lines_read", LinesRead);
            w.WriteStartObject("ops");
            foreach (var (k, v) in Ops)
            {
                w.WriteNumber(k, v);
            }

            w.WriteEndObject();
            w.WriteStartObject("skipped");
            foreach (var (k, v) in Skipped)
            {
                w.WriteNumber(k, v);
            }

            w.WriteEndObject();
            w.WriteStartArray("inferred_regions");
            foreach (var r in InferredRegions)
            {
                w.WriteStartObject();
                w.WriteString("kind", r.Kind);
                w.WriteString("start", Hex(r.Start));
                w.WriteString("end", Hex(r.End));
                w.WriteNumber("bytes", r.End - r.Start);
                w.WriteNumber("extensions", r.Extensions);
                w.WriteNumber("first_line", r.FirstLine);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartObject("tid_cpu");
            foreach (var (k, v) in TidCpu)
            {
                w.WriteNumber(k, v);
            }

            w.WriteEndObject();
            w.WriteNumber("replicate", Replicate);
            w.WriteBoolean("shared_mm", SharedMm);
            w.WriteNumber("tasks", Tasks);
            w.WriteNumber("mms", Mms);
            w.WriteNumber("unreplayed_process_forks", UnreplayedProcessForks);
            w.WriteNumber("processes_without_task_events", ProcessesWithoutTaskEvents);
            w.WriteNumber("vmas", Run.Vmas);
            w.WriteNumber("emulated_faults", Run.EmulatedFaults);
            w.WriteNumber("sigsegv", Run.Sigsegv);
            w.WriteNumber("sigbus", Run.Sigbus);
            w.WriteNumber("emulated_ns", Run.EmulatedNs);
            w.WriteNumber("order_waits", Run.OrderWaits);
            w.WriteNumber("read_ahead_waits", Run.ReadAheadWaits);
            w.WriteNumber("max_buffered_ops", Run.MaxBufferedOps);
            w.WriteString("event_hash", Run.EventHash.ToString("x16", CultureInfo.InvariantCulture));
            w.WriteStartArray("notes");
            foreach (string n in Notes)
            {
                w.WriteStringValue(n);
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }

    private static string Hex(ulong v) => "0x" + v.ToString("x", CultureInfo.InvariantCulture);
}
