using System.Globalization;
using System.Text;
using System.Text.Json;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Client;

/// <summary>
/// distemu explore: <see cref="ScheduleExplorer"/> per policy, a table of what each showed, the first finding of each
/// invariant with the `distemu run --explore` command that replays its schedule, and explore.json.
/// </summary>
public static class ExploreCommand
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static int Run(ExploreOptions o, TextWriter stdout, TextWriter stderr)
    {
        // Everything is validated before the results folder is claimed.
        var machine = o.MachineFile != null ? MachineLoader.LoadFileWithPlacement(o.MachineFile).Machine : MachineLoader.LoadPreset(o.Preset);
        var label = o.MachineFile ?? o.Preset;
        var workload = Workloads.Create(o.Workload, o.Params, exploring: true);
        int tasks = o.Tasks ?? machine.Cpus;
        if (tasks > machine.Cpus)
            throw new UsageException($"--tasks {tasks}: must be in 1..{machine.Cpus} (one task per CPU)");
        workload.CheckFits(new WorkloadContext(machine, tasks, o.Seed));
        var outDir = ResultsFolder.Claim(o.Out ?? Path.Combine("results", $"{DateTime.Now:yyyyMMdd-HHmmss}-explore-{o.Workload}"));

        stdout.WriteLine(string.Create(Inv,
            $"exploring {o.Workload} on {label}: {o.Schedules:N0} schedules per policy (seeds {o.Seed}..{o.Seed + o.Schedules - 1}), {o.Ops:N0} ops per task, {tasks} tasks, {o.Jobs} at once; Ctrl-C stops and keeps what ran"));
        stdout.Flush();
        // Ctrl-C interrupts; --duration ends the exploration normally, each policy getting an equal share of it and
        // reporting the seeds it finished.
        using var interrupt = new CancellationTokenSource();
        bool timedOut = false;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupt.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        var results = new List<PolicyExploration>();
        try
        {
            foreach (var policy in o.Policies)
            {
                if (interrupt.IsCancellationRequested) break;
                using var cancel = CancellationTokenSource.CreateLinkedTokenSource(interrupt.Token);
                if (o.Duration is { } limit) cancel.CancelAfter(limit / o.Policies.Count);
                var template = new SimRunOptions
                {
                    Machine = machine with { Policy = policy },
                    Workload = o.Workload,
                    Params = o.Params,
                    OpsPerTask = o.Ops,
                    Tasks = tasks,
                    Bugs = o.Bugs,
                };
                var started = System.Diagnostics.Stopwatch.StartNew();
                var r = ProgressDisplay.For(stdout).Show($"exploring under {policy.Name()}", show =>
                    ScheduleExplorer.Explore(template, o.Seed, o.Schedules, o.Jobs, o.StopAtFirst, progress: done =>
                    {
                        // A --duration share bounds the policy as much as its seed count does.
                        double? byTime = o.Duration is { } d ? started.Elapsed / (d / o.Policies.Count) : null;
                        double bySeeds = (double)done / o.Schedules;
                        show(new ProgressSnapshot(string.Create(Inv, $"{policy.Name()} {done:N0}/{o.Schedules:N0} schedules"), Math.Min(1, Math.Max(bySeeds, byTime ?? 0))));
                    }, cancel: cancel.Token));
                results.Add(r);
                timedOut |= cancel.IsCancellationRequested && !interrupt.IsCancellationRequested;
                stdout.WriteLine(string.Create(Inv, $"{r.Policy}: {r.Schedules:N0} schedules, {r.Schedules - r.Clean:N0} with findings{(r.Findings.Count > 0 ? " (" + string.Join(", ", r.Findings.Select(f => f.Invariant)) + ")" : "")}"));
                stdout.Flush();
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }

        bool interrupted = interrupt.IsCancellationRequested;
        string? stopped = !interrupted && timedOut ? $"--duration {o.DurationText} reached (an equal share per policy)" : null;
        var summary = Summary(o, label, tasks, workload.Params, results, interrupted, stopped);
        stdout.WriteLine();
        stdout.Write(summary);
        ResultsFolder.Write(outDir, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "explore.json"), Json(o, label, tasks, workload.Params, results, interrupted, stopped));
            File.WriteAllText(Path.Combine(dir, "summary.md"), "```\n" + summary + "```\n");
        });
        stdout.WriteLine($"results: {outDir}");
        if (interrupted)
        {
            stderr.WriteLine($"distemu: explore interrupted (Ctrl-C); what ran is in {outDir}");
            return 1;
        }
        int withFindings = results.Sum(r => r.Schedules - r.Clean);
        if (o.ExpectClean && withFindings > 0)
        {
            stderr.WriteLine($"distemu: explore: {withFindings} schedule(s) with findings (--expect-clean)");
            return 1;
        }
        return 0;
    }

    /// <summary>The command that replays <paramref name="seed"/>'s schedule under <paramref name="policy"/>.</summary>
    public static string ReproduceCommand(ExploreOptions o, string policy, int tasks, long seed)
    {
        var sb = new StringBuilder("distemu run --engine sim --explore");
        sb.Append(o.MachineFile != null ? $" --machine {ShellWord(o.MachineFile)}" : $" --preset {o.Preset}");
        sb.Append($" --policy {policy} --workload {o.Workload}");
        foreach (var bug in o.Bugs) sb.Append($" --bug {bug}");
        foreach (var (k, v) in o.Params.OrderBy(p => p.Key, StringComparer.Ordinal)) sb.Append($" --param {ShellWord($"{k}={v}")}");
        sb.Append(string.Create(Inv, $" --ops {o.Ops}"));
        if (o.Tasks != null) sb.Append(string.Create(Inv, $" --tasks {tasks}"));
        sb.Append(string.Create(Inv, $" --seed {seed}"));
        return sb.ToString();
    }

    /// <summary>A word as a POSIX shell reads it back: as it is when it is plain, else in single quotes, so the printed command runs as printed.</summary>
    internal static string ShellWord(string word) =>
        word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || "_-./=:,@%+".Contains(c, StringComparison.Ordinal))
            ? word : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    /// <summary>A policy's findings per invariant: the schedules that showed it at any site, and the first of them.</summary>
    private static IEnumerable<(string Invariant, int Schedules, long FirstSeed)> ByInvariant(PolicyExploration r) =>
        r.Findings.GroupBy(f => f.Invariant, StringComparer.Ordinal)
            .Select(g => (g.Key, g.SelectMany(f => f.Seeds).Distinct().Count(), g.Min(f => f.FirstSeed)));

    private static string Summary(ExploreOptions o, string label, int tasks, IReadOnlyDictionary<string, string> parameters, List<PolicyExploration> results, bool interrupted, string? stopped)
    {
        var sb = new StringBuilder();
        var paramText = string.Join(" ", parameters.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}"));
        sb.AppendLine(string.Create(Inv, $"distemu explore: {o.Workload} ({paramText}) on {label}, {tasks} tasks, {o.Ops:N0} ops per task, seeds from {o.Seed}{(interrupted ? " — interrupted" : "")}"));
        if (o.Bugs.Count > 0) sb.AppendLine($"bugs switched in: {string.Join(", ", o.Bugs)}");
        if (stopped != null) sb.AppendLine($"stopped early: {stopped}");
        sb.AppendLine();
        sb.Append(Report.Table(["policy", "schedules", "clean", "with findings", "found (schedules, first seed)", "faults", "host s"],
            results.Select(r => new[]
            {
                r.Policy,
                r.Schedules.ToString("N0", Inv) + (r.StoppedAtSeed is { } s ? $" (stopped at seed {s})" : ""),
                r.Clean.ToString("N0", Inv),
                (r.Schedules - r.Clean).ToString("N0", Inv),
                r.Findings.Count == 0 ? "-" : string.Join("; ", ByInvariant(r).Select(i => string.Create(Inv, $"{i.Invariant} ({i.Schedules:N0}, seed {i.FirstSeed})"))),
                r.Faults.ToString("N0", Inv),
                r.HostSeconds.ToString("F1", Inv),
            }).ToList()));
        foreach (var r in results)
            foreach (var f in r.Findings)
            {
                sb.AppendLine();
                string where = f.Site == f.Invariant ? "" : $" at {f.Site}";
                sb.AppendLine(string.Create(Inv, $"{f.Invariant} under {r.Policy}{where}: {f.Seeds.Count:N0} of {r.Schedules:N0} schedules, first at seed {f.FirstSeed}"));
                sb.AppendLine("  " + (f.First?.ToString() ?? f.Detail));
                sb.AppendLine("  reproduce: " + ReproduceCommand(o, r.Policy, tasks, f.FirstSeed));
            }
        return sb.ToString();
    }

    private static string Json(ExploreOptions o, string label, int tasks, IReadOnlyDictionary<string, string> parameters, List<PolicyExploration> results, bool interrupted, string? stopped)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("status", interrupted ? "interrupted" : "completed");
            if (stopped != null) w.WriteString("stopped", stopped);
            w.WriteString("machine", label);
            w.WriteString("workload", o.Workload);
            w.WriteStartObject("params");
            foreach (var (k, v) in parameters.OrderBy(p => p.Key, StringComparer.Ordinal)) w.WriteString(k, v);
            w.WriteEndObject();
            w.WriteNumber("tasks", tasks);
            w.WriteNumber("ops_per_task", o.Ops);
            w.WriteNumber("first_seed", o.Seed);
            w.WriteNumber("schedules_per_policy", o.Schedules);
            w.WriteBoolean("stop_at_first", o.StopAtFirst);
            w.WriteStartArray("bugs");
            foreach (var bug in o.Bugs) w.WriteStringValue(bug);
            w.WriteEndArray();
            w.WriteStartArray("policies");
            foreach (var r in results)
            {
                w.WriteStartObject();
                w.WriteString("policy", r.Policy);
                w.WriteNumber("schedules", r.Schedules);
                w.WriteNumber("clean", r.Clean);
                w.WriteNumber("with_findings", r.Schedules - r.Clean);
                if (r.StoppedAtSeed is { } s) w.WriteNumber("stopped_at_seed", s); else w.WriteNull("stopped_at_seed");
                w.WriteNumber("faults", r.Faults);
                w.WriteNumber("host_seconds", Math.Round(r.HostSeconds, 3));
                w.WriteStartArray("findings");
                foreach (var f in r.Findings)
                {
                    w.WriteStartObject();
                    w.WriteString("invariant", f.Invariant);
                    w.WriteString("site", f.Site);
                    w.WriteNumber("schedules", f.Seeds.Count);
                    w.WriteNumber("first_seed", f.FirstSeed);
                    w.WriteString("reproduce", ReproduceCommand(o, r.Policy, tasks, f.FirstSeed));
                    w.WriteStartArray("seeds");
                    foreach (var seed in f.Seeds) w.WriteNumberValue(seed);
                    w.WriteEndArray();
                    if (f.First != null)
                    {
                        w.WritePropertyName("first");
                        Report.WriteViolation(w, f.First);
                    }
                    else
                    {
                        w.WriteNull("first");
                        w.WriteString("detail", f.Detail);
                    }
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray()) + "\n";
    }
}
