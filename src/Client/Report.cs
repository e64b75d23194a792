using System.Globalization;
using System.Text;
using System.Text.Json;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Stats;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Client;

/// <summary>Turns a <see cref="RunResult"/> into the results folder's files and the printed summary.</summary>
/// <param name="workload">What ran: a workload's name and parameters, or a trace and the replay options.</param>
public sealed class Report(RunResult result, MachineSpec machine, (string Name, IReadOnlyDictionary<string, string> Params) workload, RunOptions options, string label)
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;
    private VmStat V => result.Machine.VmStat;

    public double FaultsPerEmulatedSecond => result.EmulatedNs > 0 ? V.Faults / (result.EmulatedNs / 1e9) : 0;
    public double FaultsPerHostSecond => result.HostSeconds > 0 ? V.Faults / result.HostSeconds : 0;

    private IEnumerable<(string Name, long Value)> VmCounters() =>
    [
        ("pgfault", V.pgfault), ("pgmajfault", V.pgmajfault), ("vma_lock_success", V.vma_lock_success),
        ("vma_lock_abort", V.vma_lock_abort), ("vma_lock_retry", V.vma_lock_retry), ("vma_lock_miss", V.vma_lock_miss),
        ("numa_hint_faults", V.numa_hint_faults), ("numa_pages_migrated", V.numa_pages_migrated),
        ("pgmigrate_success", V.pgmigrate_success), ("pgmigrate_fail", V.pgmigrate_fail),
        ("thp_fault_alloc", V.thp_fault_alloc), ("thp_fault_fallback", V.thp_fault_fallback),
        ("thp_migration_success", V.thp_migration_success), ("thp_migration_fail", V.thp_migration_fail),
        ("thp_split_pmd", V.thp_split_pmd),
    ];

    private static string N(long v) => v.ToString("N0", Inv);
    private static string F(double v) => v.ToString("N0", Inv);

    public static string Table(IReadOnlyList<string> header, IReadOnlyList<string[]> rows)
    {
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(IReadOnlyList<string> cells) =>
            sb.AppendLine(string.Join("  ", cells.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))).TrimEnd());
        Line(header);
        Line(widths.Select(w => new string('-', w)).ToArray());
        foreach (var r in rows) Line(r);
        return sb.ToString();
    }

    public string Summary()
    {
        var sb = new StringBuilder();
        var paramText = string.Join(" ", workload.Params.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
        sb.AppendLine($"distemu run: engine {result.Engine}, machine {label} ({machine.Nodes} nodes x {machine.CpusPerNode} CPUs, {MachineLoader.FormatBytes(machine.MemoryBytes)}), policy {machine.Policy.Name()} ({machine.Policy.Release()})");
        sb.AppendLine($"workload {workload.Name} ({paramText}), {result.Tasks} tasks, " +
            (workload.Name == "trace" ? "" : $"{N(options.Ops)} ops per task, ") + $"seed {options.Seed}" +
            (options.Explore ? " (schedule exploration on)" : ""));
        if (options.Bugs.Count > 0) sb.AppendLine($"bugs switched in: {string.Join(", ", options.Bugs)}");
        if (result.Status != "completed") sb.AppendLine($"status: {result.Status} ({result.Reason})");
        else if (result.Reason != null) sb.AppendLine($"stopped early: {result.Reason}");
        sb.AppendLine();
        sb.Append(Table(["throughput", "value"],
        [
            ["faults", N(V.Faults)],
            ["ops", N(result.Ops)],
            ["emulated time (ms)", (result.EmulatedNs / 1e6).ToString("N3", Inv)],
            ["host time (s)", result.HostSeconds.ToString("N3", Inv)],
            ["faults / emulated s", F(FaultsPerEmulatedSecond)],
            ["faults / host s", F(FaultsPerHostSecond)],
            .. (result.GrainCalls is { } gc
                ? new[] { new[] { "grain calls", N(gc.Total) }, ["grain calls / fault", (V.Faults > 0 ? (double)gc.Total / V.Faults : 0).ToString("N2", Inv)] }
                : []),
            // The sim engine's cost driver: resumptions per fault (6–7 for each fault of a many-CPU run when exact).
            .. (result.Engine == "sim" && V.Faults > 0 && result.EngineEvents > 0
                ? new[] { new[] { result.RunAheadGrants != null ? "engine events / fault (run-ahead)" : "engine events / fault (exact)", ((double)result.EngineEvents / V.Faults).ToString("N2", Inv) } }
                : []),
        ]));
        sb.AppendLine();
        sb.Append(Table(["vmstat", "value"], VmCounters().Select(c => new[] { c.Name, N(c.Value) }).ToList()));
        sb.AppendLine();
        var locks = result.Machine.LockStats.Entries
            .Where(e => e.Class is LockClass.MmapLock or LockClass.VmaLock || e.Acquisitions > 0)
            .Select(e => new[]
            {
                e.Class.Name(), e.Mode.Name(), N(e.Acquisitions), N(e.Contentions),
                N(e.Wait.P50), N(e.Wait.P99), N(e.Wait.Max), N(e.Hold.P50), N(e.Hold.P99), N(e.Hold.Max),
            }).ToList();
        sb.Append(Table(["lock (ns)", "mode", "acquisitions", "contentions", "wait p50", "wait p99", "wait max", "hold p50", "hold p99", "hold max"], locks));
        sb.AppendLine();
        sb.Append(Table(["latency (ns)", "count", "p50", "p99", "max"],
        [
            Hist("migration wait", result.Machine.MigrationWait),
            Hist("fault latency", result.Machine.FaultLatency),
            Hist("writer wait", result.Machine.WriterWait),
            Hist("  in mmap_lock", result.Machine.WriterMmapLockWait),
            Hist("  in vma lock", result.Machine.WriterVmaWait),
        ]));
        sb.AppendLine();
        var san = result.Machine.Sanitizer;
        if (!san.Enabled) sb.AppendLine("sanitizer: off");
        else if (san.Violations.Count == 0) sb.AppendLine("sanitizer: no violations");
        else sb.AppendLine($"sanitizer: {san.Violations.Count} violation(s); first: {san.Violations[0]}");
        if (result.Trace is { } tr) sb.AppendLine(TraceLine(tr));
        if (result.Stalled.Count > 0) sb.AppendLine($"stalled tasks: {result.Stalled.Count} ({string.Join("; ", result.Stalled.Take(3))})");
        return sb.ToString();
    }

    /// <summary>What the trace files got, and every span they did not, so that nothing is left out silently.</summary>
    private static string TraceLine(TraceCounts tr)
    {
        var sb = new StringBuilder($"trace: {N(tr.Spans)} spans written in {N(tr.Traces)} traces");
        if (tr.MaxSpans is { } max)
            sb.Append($"; {N(tr.LeftOutSpans)} spans in {N(tr.LeftOutTraces)} whole traces left out (--trace-max-spans {N(max)})");
        if (tr.SampledOut > 0) sb.Append($"; {N(tr.SampledOut)} sampled out");
        if (tr.Dropped > 0) sb.Append($"; {N(tr.Dropped)} DROPPED (lost on the way to the writer or the exporter)");
        foreach (var line in TraceFileLines(tr.Files ?? []))
            sb.Append('\n').Append(line);
        return sb.ToString();
    }

    /// <summary>
    /// One line per file written, except a split Jaeger trace: its parts in one line with its index, so no one uploads
    /// the wrong file and 48 parts do not fill the terminal.
    /// </summary>
    private static IEnumerable<string> TraceFileLines(IReadOnlyList<string> files)
    {
        var partsOf = new HashSet<string>();
        foreach (var index in files.Where(f => f.EndsWith(".index.json", StringComparison.Ordinal)))
        {
            string stem = index[..^".index.json".Length];
            var parts = files.Where(f => f.StartsWith(stem + "-", StringComparison.Ordinal) && f.EndsWith(".json", StringComparison.Ordinal)
                && f.Length > stem.Length + 6 && f[(stem.Length + 1)..^5].All(char.IsAsciiDigit)).ToList();
            partsOf.UnionWith(parts);
            partsOf.Add(index);
            if (parts.Count > 0)
                yield return $"trace files: {N(parts.Count)} Jaeger files of at most --trace-split traces, each opening in Jaeger UI's upload: " +
                    $"{parts[0]} … {Path.GetFileName(parts[^1])}; what each holds (emulated time, CPUs, retries, violations): {index}";
        }
        var rest = files.Where(f => !partsOf.Contains(f)).ToList();
        if (rest.Count > 0) yield return $"trace file: {string.Join(", ", rest)}";
    }

    private static string[] Hist(string name, NsHistogram h) => [name, N(h.Count), N(h.P50), N(h.P99), N(h.Max)];

    public string VmStat()
    {
        var sb = new StringBuilder();
        foreach (var (k, v) in V.Lines()) sb.Append(k).Append(' ').Append(v.ToString(Inv)).Append('\n');
        return sb.ToString();
    }

    /// <summary>A /proc/lock_stat-like table (times in ns; the kernel prints µs with two decimals).</summary>
    public string LockStat()
    {
        string[] cols = ["class name", "con-bounces", "contentions", "waittime-min", "waittime-max", "waittime-total", "waittime-avg",
            "acq-bounces", "acquisitions", "holdtime-min", "holdtime-max", "holdtime-total", "holdtime-avg"];
        var rows = result.Machine.LockStats.Entries.Select(e => new[]
        {
            $"{LockStatClass(e.Class)}-{(e.Mode == LockMode.Read ? "R" : "W")}:",
            e.Contentions.ToString(Inv), e.Contentions.ToString(Inv),
            e.Wait.Min.ToString(Inv), e.Wait.Max.ToString(Inv), e.Wait.Total.ToString(Inv), e.Wait.Avg.ToString("F2", Inv),
            e.Acquisitions.ToString(Inv), e.Acquisitions.ToString(Inv),
            e.Hold.Min.ToString(Inv), e.Hold.Max.ToString(Inv), e.Hold.Total.ToString(Inv), e.Hold.Avg.ToString("F2", Inv),
        }).ToList();
        var widths = cols.Select((c, i) => Math.Max(c.Length, rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        sb.Append("lock_stat version 0.4\n");
        sb.Append("# times in emulated nanoseconds\n");
        string Row(IReadOnlyList<string> cells) => string.Join(" ", cells.Select((c, i) => i == 0 ? c.PadLeft(widths[i]) : c.PadLeft(widths[i])));
        var header = Row(cols);
        sb.Append(new string('-', header.Length)).Append('\n').Append(header).Append('\n').Append(new string('-', header.Length)).Append('\n');
        foreach (var r in rows) sb.Append(Row(r)).Append('\n');
        return sb.ToString();
    }

    /// <summary>The lock class names /proc/lock_stat would show.</summary>
    private static string LockStatClass(LockClass c) => c switch
    {
        LockClass.MmapLock => "&mm->mmap_lock",
        LockClass.VmaLock => "&vma->vm_lock",
        LockClass.FolioLock => "&folio->lock",
        LockClass.Ptl => "ptlock_ptr(ptdesc)",
        _ => c.Name(),
    };

    public string ConfigYaml()
    {
        var sb = new StringBuilder();
        sb.Append("# effective machine and run options of this run (loadable with --machine; 'run' is ignored on load)\n");
        sb.Append($"name: {machine.Name}\n");
        sb.Append($"nodes: {machine.Nodes}\n");
        sb.Append($"cpus_per_node: {machine.CpusPerNode}\n");
        sb.Append($"memory_per_node: {machine.MemoryPerNodeBytes.ToString(Inv)}\n");
        sb.Append($"page_size: {machine.PageSize}\n");
        sb.Append($"policy: {machine.Policy.Name()}\n");
        sb.Append($"transparent_hugepage: {machine.Thp.Name()}\n");
        sb.Append("distance:\n");
        foreach (var row in machine.Distance) sb.Append("  - [").Append(string.Join(", ", row)).Append("]\n");
        sb.Append("cost:\n");
        foreach (var (key, prop) in MachineLoader.CostKeys)
            sb.Append($"  {key}: {Convert.ToString(prop.GetValue(machine.Cost), Inv)}\n");
        sb.Append("run:\n");
        sb.Append($"  engine: {result.Engine}\n");
        sb.Append($"  machine: {label}\n");
        sb.Append($"  workload: {workload.Name}\n");
        sb.Append("  params:\n");
        foreach (var (k, v) in workload.Params.OrderBy(p => p.Key, StringComparer.Ordinal)) sb.Append($"    {k}: \"{v}\"\n");
        sb.Append($"  seed: {options.Seed}\n");
        sb.Append($"  ops_per_task: {options.Ops}\n");
        sb.Append($"  tasks: {result.Tasks}\n");
        sb.Append($"  sanitizer: {(options.Sanitizer ? "on" : "off")}\n");
        if (options.Explore) sb.Append("  explore: on\n");
        if (options.Bugs.Count > 0) sb.Append($"  bugs: [{string.Join(", ", options.Bugs)}]\n");
        return sb.ToString();
    }

    public string StatsJson()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("status", result.Status);
            if (result.Reason != null) w.WriteString("reason", result.Reason);
            if (result.LostGrains.Count > 0)
            {
                w.WriteStartArray("lost_grains");
                foreach (var g in result.LostGrains) w.WriteStringValue(g);
                w.WriteEndArray();
            }
            w.WriteString("engine", result.Engine);
            w.WriteString("policy", machine.Policy.Name());
            w.WriteString("policy_release", machine.Policy.Release());
            w.WriteNumber("seed", options.Seed);
            if (result.Engine == "sim" && result.EventCount > 0)
            {
                // The sim engine's determinism, checkable: the same seed gives the same events, in any process.
                w.WriteStartObject("event_log");
                w.WriteNumber("events", result.EventCount);
                w.WriteString("hash", result.EventHash.ToString("x16", Inv));
                w.WriteEndObject();
                // How the engine got there: resumptions it ran, and whether tasks ran ahead of each other (results do
                // not depend on it; --exact turns it off).
                w.WriteStartObject("sim_engine");
                w.WriteNumber("events", result.EngineEvents);
                w.WriteBoolean("run_ahead", result.RunAheadGrants != null);
                if (result.RunAheadGrants is { } grants) w.WriteNumber("run_ahead_grants", grants);
                w.WriteEndObject();
            }
            w.WriteStartObject("machine");
            w.WriteString("name", machine.Name);
            w.WriteNumber("nodes", machine.Nodes);
            w.WriteNumber("cpus", machine.Cpus);
            w.WriteNumber("memory_bytes", machine.MemoryBytes);
            w.WriteEndObject();
            w.WriteStartObject("workload");
            w.WriteString("name", workload.Name);
            w.WriteStartObject("params");
            foreach (var (k, v) in workload.Params.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteNumber("tasks", result.Tasks);
            w.WriteNumber("ops_per_task", options.Ops);
            w.WriteEndObject();
            w.WriteNumber("host_seconds", result.HostSeconds);
            w.WriteNumber("emulated_ns", result.EmulatedNs);
            w.WriteNumber("ops", result.Ops);
            w.WriteNumber("faults", V.Faults);
            w.WriteNumber("faults_per_host_second", FaultsPerHostSecond);
            w.WriteNumber("faults_per_emulated_second", FaultsPerEmulatedSecond);
            w.WriteStartObject("vmstat");
            foreach (var (k, v) in VmCounters()) w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteStartArray("locks");
            foreach (var e in result.Machine.LockStats.Entries)
            {
                w.WriteStartObject();
                w.WriteString("name", e.Class.Name());
                w.WriteString("mode", e.Mode.Name());
                w.WriteNumber("acquisitions", e.Acquisitions);
                w.WriteNumber("contentions", e.Contentions);
                Hist(w, "wait_ns", e.Wait, first: "min");
                Hist(w, "hold_ns", e.Hold, first: "min");
                w.WriteEndObject();
            }
            w.WriteEndArray();
            Hist(w, "migration_wait_ns", result.Machine.MigrationWait);
            Hist(w, "fault_latency_ns", result.Machine.FaultLatency);
            Hist(w, "writer_wait_ns", result.Machine.WriterWait);
            Hist(w, "writer_wait_mmap_lock_ns", result.Machine.WriterMmapLockWait);
            Hist(w, "writer_wait_vma_lock_ns", result.Machine.WriterVmaWait);
            var san = result.Machine.Sanitizer;
            if (result.Trace is { } tr)
            {
                w.WriteStartObject("trace");
                w.WriteNumber("spans", tr.Spans);
                w.WriteNumber("traces", tr.Traces);
                w.WriteNumber("dropped", tr.Dropped);
                w.WriteNumber("sampled_out", tr.SampledOut);
                if (tr.MaxSpans is { } max) w.WriteNumber("max_spans", max);
                w.WriteNumber("left_out_spans", tr.LeftOutSpans);
                w.WriteNumber("left_out_traces", tr.LeftOutTraces);
                w.WriteEndObject();
            }
            if (result.Skew is { } skew)
            {
                w.WriteStartObject("quantum");
                w.WriteNumber("ns", skew.QuantumNs);
                w.WriteNumber("max_skew_ns", skew.MaxSkewNs);
                if (result.QuantumSyncs is { } qs)
                {
                    w.WriteNumber("syncs", qs.Syncs);
                    w.WriteNumber("lookahead_grants", qs.LookaheadGrants);
                }
                w.WriteEndObject();
            }
            if (result.GrainCalls is { } gc)
            {
                w.WriteStartObject("grain_calls");
                w.WriteNumber("total", gc.Total);
                w.WriteNumber("cross_silo", gc.CrossSilo);
                w.WriteNumber("per_fault", V.Faults > 0 ? Math.Round((double)gc.Total / V.Faults, 3) : 0);
                w.WriteEndObject();
            }
            w.WriteStartObject("sanitizer");
            w.WriteBoolean("enabled", san.Enabled);
            w.WriteStartArray("violations");
            foreach (var v in san.Violations)
                WriteViolation(w, v);
            w.WriteEndArray();
            w.WriteEndObject();
            if (result.Stalled.Count > 0)
            {
                w.WriteStartArray("stalled");
                foreach (var s in result.Stalled) w.WriteStringValue(s);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }

    /// <summary>A distribution in stats.json: lock tables lead with "min", the others with "count".</summary>
    private static void Hist(Utf8JsonWriter w, string name, NsHistogram h, string first = "count")
    {
        w.WriteStartObject(name);
        w.WriteNumber(first, first == "min" ? h.Min : h.Count);
        w.WriteNumber("p50", h.P50);
        w.WriteNumber("p99", h.P99);
        w.WriteNumber("max", h.Max);
        w.WriteNumber("total", h.Total);
        w.WriteEndObject();
    }

    /// <summary>A sanitizer report as JSON (stats.json's violations, explore.json's findings).</summary>
    public static void WriteViolation(Utf8JsonWriter w, DistEmu.Kernel.Sanitizer.Violation v)
    {
        w.WriteStartObject();
        w.WriteString("invariant", v.Invariant);
        w.WriteString("policy", v.Policy);
        w.WriteString("task", v.Task);
        w.WriteNumber("cpu", v.Cpu);
        if (v.Vma is { } vma) w.WriteNumber("vma", vma); else w.WriteNull("vma");
        if (v.Address is { } addr) w.WriteString("address", $"0x{addr:x}"); else w.WriteNull("address");
        w.WriteNumber("emulated_ns", v.EmulatedNs);
        w.WriteString("message", v.Message);
        if (v.Site != null) w.WriteString("site", v.Site);
        w.WriteStartArray("history");
        foreach (var h in v.History) w.WriteStringValue(h);
        w.WriteEndArray();
        w.WriteEndObject();
    }
}
