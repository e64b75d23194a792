using System.Globalization;
using DistEmu.Kernel.Locking;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Stats;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Client;

/// <summary>One run of an experiment matrix, reduced to the numbers results.csv and report.md need.</summary>
public sealed record ExperimentRow
{
    public required string Policy { get; init; }
    public required string Preset { get; init; }
    public required string Workload { get; init; }
    public required int Cpus { get; init; }
    public required int Repeat { get; init; }
    public required long Seed { get; init; }
    public required long Faults { get; init; }
    public required double HostSeconds { get; init; }
    public required long EmulatedNs { get; init; }
    public double FaultsPerHostSecond => HostSeconds > 0 ? Faults / HostSeconds : 0;
    public double FaultsPerEmulatedSecond => EmulatedNs > 0 ? Faults / (EmulatedNs / 1e9) : 0;
    /// <summary>Filled in once the whole matrix ran (needs the cpus=1 point).</summary>
    public double? ScalingEfficiency { get; set; }
    public double? CrossSiloFraction { get; init; }
    /// <summary>The silos the run had: null under sim, 1 for the embedded silo, N with --silos.</summary>
    public int? Silos { get; init; }
    /// <summary>Grain calls (the emulator's messages) per fault; orleans only.</summary>
    public double? GrainCallsPerFault { get; init; }
    /// <summary>The grain-call cost measured on the run's cluster (with --silos).</summary>
    public DistEmu.Silo.CallCost? CallCost { get; init; }
    public double? FaultsPerHostSecondPerSilo => Silos is { } s ? FaultsPerHostSecond / s : null;
    public double HostMicrosPerFault => Faults > 0 ? HostSeconds * 1e6 / Faults : 0;
    /// <summary>Under an orleans quantum: the largest clock skew between CPUs the time keepers measured, emulated ns.</summary>
    public long? MaxSkewNs { get; init; }

    /// <summary>
    /// The scaling model: host µs per fault spent crossing silos = grain calls per fault × cross-silo fraction × what a
    /// cross-silo call adds to a local one (measured by ping). Null without the three factors; 0 on one silo.
    /// </summary>
    public double? ModelCrossSiloMicrosPerFault =>
        GrainCallsPerFault is { } c && CrossSiloFraction is { } f && CallCost is { } cost ? c * f * (cost.ExtraMicros ?? 0) : null;
    public required long FaultLatencyP99 { get; init; }
    public required long MmapLockWaitP99 { get; init; }
    public required long VmaLockWaitP99 { get; init; }
    public required long WriterWaitP99 { get; init; }
    /// <summary>The writers' wait in mmap_write_lock alone (behind faults and writers holding mmap_lock), p99.</summary>
    public long WriterMmapLockWaitP99 { get; init; }
    public required long MigrationWaitP99 { get; init; }
    public required long VmaLockRetry { get; init; }
    public required long PgmigrateSuccess { get; init; }
    /// <summary>THPs migrated (each also 512 pages of <see cref="PgmigrateSuccess"/>).</summary>
    public long ThpMigrationSuccess { get; init; }
    public required long SanitizerViolations { get; init; }
    public required IReadOnlyDictionary<string, long> SanitizerCounts { get; init; }

    public long Violations(string invariant) => SanitizerCounts.GetValueOrDefault(invariant);

    public static ExperimentRow From(RunResult r, string policy, string preset, string workload, int repeat, int? silos = null, DistEmu.Silo.CallCost? cost = null)
    {
        var m = r.Machine;
        long WaitP99(LockClass c)
        {
            var h = new NsHistogram();
            foreach (var e in m.LockStats.Entries)
                if (e.Class == c) h.Add(e.Wait);
            return h.P99;
        }
        return new ExperimentRow
        {
            Policy = policy,
            Preset = preset,
            Workload = workload,
            Cpus = r.Tasks,
            Repeat = repeat,
            Seed = r.Options.Seed,
            Faults = m.VmStat.Faults,
            HostSeconds = r.HostSeconds,
            EmulatedNs = r.EmulatedNs,
            CrossSiloFraction = r.GrainCalls is { } gc ? (gc.Total > 0 ? (double)gc.CrossSilo / gc.Total : 0) : null,
            GrainCallsPerFault = r.GrainCalls is { } calls && m.VmStat.Faults > 0 ? (double)calls.Total / m.VmStat.Faults : null,
            Silos = silos ?? (r.Engine == "orleans" ? 1 : null),
            CallCost = cost,
            MaxSkewNs = r.Skew?.MaxSkewNs,
            FaultLatencyP99 = m.FaultLatency.P99,
            MmapLockWaitP99 = WaitP99(LockClass.MmapLock),
            VmaLockWaitP99 = WaitP99(LockClass.VmaLock),
            WriterWaitP99 = m.WriterWait.P99,
            WriterMmapLockWaitP99 = m.WriterMmapLockWait.P99,
            MigrationWaitP99 = m.MigrationWait.P99,
            VmaLockRetry = m.VmStat.vma_lock_retry,
            PgmigrateSuccess = m.VmStat.pgmigrate_success,
            ThpMigrationSuccess = m.VmStat.thp_migration_success,
            SanitizerViolations = m.Sanitizer.Total,
            SanitizerCounts = new SortedDictionary<string, long>(m.Sanitizer.Counts.ToDictionary(kv => kv.Key, kv => kv.Value), StringComparer.Ordinal),
        };
    }
}

/// <summary><c>distemu experiment</c>: runs the matrix, then writes results.csv, report.md and the plots atomically.</summary>
public static class ExperimentCommand
{
    /// <summary>Starts <paramref name="silos"/> local silo processes for one group of runs and says what it started.</summary>
    private static LocalCluster StartCluster(int silos, ExperimentOptions o, TextWriter stdout)
    {
        var cluster = LocalCluster.StartAsync(silos, o.Cluster, "experiment-" + Guid.NewGuid().ToString("N")[..12], TimeSpan.FromSeconds(90)).GetAwaiter().GetResult();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"local cluster {cluster.ClusterId}: {silos} silo process(es) (pids {string.Join(", ", cluster.Silos.Select(p => p.Id))}) on {cluster.Membership}{(cluster.Redis is { } r ? $" (redis-server pid {r.Id}, started here)" : "")}"));
        return cluster;
    }

    /// <summary>
    /// One short run of the first point on fresh silo processes, not recorded: their first run pays for JIT compilation
    /// and grain-type setup, which would otherwise land on whichever row comes first.
    /// </summary>
    private static void WarmUp(LocalCluster cluster, Point p, ExperimentOptions o, TextWriter stdout)
    {
        var options = new SimRunOptions
        {
            Machine = p.Machine,
            Workload = p.Workload,
            Params = p.Params,
            Seed = o.Seed,
            OpsPerTask = Math.Min(o.Ops, WarmUpOps),
            Tasks = p.Cpus,
            Sanitizer = true,
        };
        stdout.WriteLine($"warm-up run on {cluster.ClusterId} ({options.OpsPerTask} ops per task, not recorded)");
        var result = AttachedOrleans.Run(cluster.Target, options, o.Quantum, TextWriter.Null);
        if (result.Status != "completed")
            throw new InvalidOperationException($"the warm-up run on {cluster.ClusterId} {result.Status}: {result.Reason}");
    }

    /// <summary>Ops per task of the warm-up run.</summary>
    public const int WarmUpOps = 500;

    /// <summary>The grain-call cost on this cluster: a ping within the first silo and, with two or more, to the second.</summary>
    private static DistEmu.Silo.CallCost MeasureCallCost(LocalCluster cluster, TextWriter stdout)
    {
        var silos = cluster.ActiveSilosAsync().GetAwaiter().GetResult();
        var cost = DistEmu.Silo.CallCost.MeasureAsync(cluster.Client, silos).GetAwaiter().GetResult();
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"grain call cost: {cost.LocalMicros:F1} µs within a silo{(cost.CrossSiloMicros is { } c ? $", {c:F1} µs across two (+{cost.ExtraMicros:F1} µs)" : "")} (median of 5 × 2000 sequential pings)"));
        return cost;
    }

    /// <summary>One point's run on its engine, its progress shown as a run's (ops begun of all ops bound it).</summary>
    private static RunResult RunPoint(SimRunOptions options, LocalCluster? cluster, ExperimentOptions o, TextWriter stdout, string title)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long opsTotal = (long)options.Tasks!.Value * options.OpsPerTask;
        return ProgressDisplay.For(stdout).Show(title, show =>
        {
            if (o.Engine == "sim")
            {
                long reports = 0;
                return SimRun.Run(options with
                {
                    Progress = (m, emulatedNs) => show(ProgressSnapshot.OfRun(m.VmStat.Faults, emulatedNs, clock.Elapsed, null, null,
                        ProgressSnapshot.FractionDone(++reports * SimReportEveryOps, opsTotal, clock.Elapsed, null))),
                });
            }
            void OnStatus(DistEmu.Abstractions.RunStatus s) => show(ProgressSnapshot.OfRun(s.Faults, s.MaxClock, clock.Elapsed, s.Done, s.Tasks,
                ProgressSnapshot.FractionDone(s.Ops, opsTotal, clock.Elapsed, null)));
            return cluster != null ? AttachedOrleans.Run(cluster.Target, options, o.Quantum, stdout, progress: OnStatus)
                : EmbeddedOrleans.Run(options, o.Quantum, stdout, progress: OnStatus);
        });
    }

    /// <summary>How many ops (all tasks together) the sim engine runs between two progress reports (SimRun).</summary>
    private const long SimReportEveryOps = 4096;

    private sealed record Point(FaultPolicy Policy, string Preset, MachineSpec Machine, string Workload, IReadOnlyDictionary<string, string> Params, int Cpus, int Repeat);

    public static int Run(ExperimentOptions o, TextWriter stdout, TextWriter stderr)
    {

        // Everything is validated before the results folder is created.
        var machines = new Dictionary<string, MachineSpec>(StringComparer.Ordinal);
        foreach (var p in o.Presets)
        {
            try { machines[p] = MachineLoader.LoadPreset(p); }
            catch (UsageException e) { throw new UsageException($"--presets: {e.Message}"); }
        }
        var paramsByWorkload = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        foreach (var w in o.Workloads)
        {
            var known = Workloads.Create(w).Parameters.Keys.ToHashSet(StringComparer.Ordinal);
            paramsByWorkload[w] = o.Params.Where(kv => known.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        }
        foreach (var k in o.Params.Keys)
            if (!paramsByWorkload.Values.Any(d => d.ContainsKey(k)))
                throw new UsageException($"--param {k}: no workload in --workloads takes it ({string.Join(", ", o.Workloads)})");
        var points = new List<Point>();
        foreach (var preset in o.Presets)
        {
            var machine = machines[preset];
            var cpusList = o.Cpus ?? [machine.Cpus];
            foreach (var c in cpusList)
                if (c > machine.Cpus) throw new UsageException($"--cpus {c}: preset {preset} has {machine.Cpus} CPUs");
            foreach (var w in o.Workloads)
            {
                Workload workload;
                try { workload = Workloads.Create(w, paramsByWorkload[w], exploring: o.Engine == "sim" && o.Explore); }
                catch (KernelConfigException e) { throw new UsageException($"--param: {w}: {e.Message}"); }
                if (workload.Forks && o.Engine != "sim")
                    throw new UsageException($"--workloads {w}: it forks, and fork runs on the sim engine only (not --engine {o.Engine})");
                foreach (var c in cpusList)
                {
                    try { workload.CheckFits(new WorkloadContext(machine, c, o.Seed)); }
                    catch (KernelConfigException e) { throw new UsageException($"{w} on {preset} with {c} cpus: {e.Message}"); }
                    foreach (var policy in o.Policies)
                        for (int r = 0; r < o.Repeat; r++)
                            points.Add(new Point(policy, preset, machine with { Policy = policy }, w, paramsByWorkload[w], c, r + 1));
                }
            }
        }

        var outDir = ResultsFolder.Claim(o.Out ?? Path.Combine("results", $"{DateTime.Now:yyyyMMdd-HHmmss}-experiment"));

        // Each silo count is a cluster of its own (null: the sim engine or one embedded silo per run).
        var groups = o.Silos?.Select(n => (int?)n).ToList() ?? [null];
        int total = points.Count * groups.Count;
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"experiment: {total} runs on the {o.Engine} engine{(o.Engine == "sim" ? (o.Explore ? " (schedule exploration on)" : " (no exploration: run-ahead)") : $" (--quantum {o.Quantum})")}{(o.Silos is null ? "" : $" on {string.Join(", ", o.Silos)} local silo process(es)")}, {o.Ops} ops per task"));
        var rows = new List<ExperimentRow>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Ctrl-C stops the current run (partial, so no results are written) and then every process started here.
        bool interrupted = false;
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupted = true;
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            int n = 0;
            foreach (var silos in groups)
            {
                using var cluster = silos is { } count ? StartCluster(count, o, stdout) : null;
                var cost = cluster is null ? null : MeasureCallCost(cluster, stdout);
                if (cluster != null) WarmUp(cluster, points[0], o, stdout);
                foreach (var p in points)
                {
                    n++;
                    long seed = o.Seed + p.Repeat - 1;
                    stdout.Write(string.Create(CultureInfo.InvariantCulture,
                        $"run {n}/{total}: {p.Policy.Name()} {p.Preset} {p.Workload} cpus={p.Cpus}{(silos is null ? "" : $" silos={silos}")} repeat={p.Repeat} seed={seed} … "));
                    if (o.Engine == "orleans") stdout.WriteLine(); // the silo's progress lines follow
                    stdout.Flush();
                    var options = new SimRunOptions
                    {
                        Machine = p.Machine,
                        Workload = p.Workload,
                        Params = p.Params,
                        Seed = seed,
                        OpsPerTask = o.Ops,
                        Tasks = p.Cpus,
                        Sanitizer = true,
                        Exploration = o.Engine == "sim" && o.Explore ? Exploration.Default : null,
                        Stop = () => interrupted ? new RunStop(true, "interrupted (Ctrl-C)") : null,
                    };
                    var result = RunPoint(options, cluster, o, stdout, $"run {n}/{total}");
                    if (result.Status != "completed")
                    {
                        stderr.WriteLine($"distemu: error: run {n}/{total} ({p.Policy.Name()} {p.Preset} {p.Workload} cpus={p.Cpus}{(silos is null ? "" : $" silos={silos}")}) {result.Status}: {result.Reason}; no results written");
                        return 1;
                    }
                    var row = ExperimentRow.From(result, p.Policy.Name(), p.Preset, p.Workload, p.Repeat, silos, cost);
                    rows.Add(row);
                    string calls = row.GrainCallsPerFault is { } cpf
                        ? string.Create(CultureInfo.InvariantCulture, $", {cpf:F2} calls/fault, cross-silo {row.CrossSiloFraction:P1}") : "";
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{row.Faults:N0} faults, {row.FaultsPerEmulatedSecond:N0} emulated faults/s, writer wait p99 {row.WriterWaitP99:N0} ns, {row.SanitizerViolations} violation(s), {row.HostSeconds:F2} s{calls}"));
                }
            }
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
        ExperimentReport.FillScaling(rows);
        var report = new ExperimentReport(rows, o);

        ResultsFolder.Write(outDir, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "results.csv"), report.Csv());
            var plots = ExperimentPlots.Write(rows, dir);
            File.WriteAllText(Path.Combine(dir, "report.md"), report.Markdown(plots));
        });
        foreach (var v in report.Verdicts())
            stdout.WriteLine(v);
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{rows.Count} runs in {clock.Elapsed.TotalSeconds:F1} s; results: {outDir}"));
        return 0;
    }
}
