using System.Globalization;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Replay;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>The distemu command line. Exit codes: 0 done, 1 the run failed, 2 bad input (DESIGN.md "Command line").</summary>
public static class Cli
{
    public const long DefaultOps = 20_000;

    private const string MainHelp = """
        distemu — emulate large NUMA machines at the level of the Linux mm fault/locking protocol

        usage: distemu <command> [options]

        commands:
          run       run a workload (or, with --trace, a perf trace) on an emulated machine and write a results folder
          replay    replay a perf trace: distemu replay FILE [run options] (the same as run --trace FILE)
          presets   list the machine presets with their sizes
          experiment run a policy × preset × workload × cpus matrix; writes results.csv, report.md and plots
          explore   schedule exploration on the sim engine: many seeds per policy, each finding with the seed that shows it
          cluster   cluster status: the silos of a cluster and the grains each hosts
          db        db init: create the PostgreSQL membership tables (Orleans' scripts, deploy/sql) for adonet clustering
          silo      run one silo of a cluster until SIGTERM (the same as dotnet run --project src/Silo)

        Run 'distemu <command> --help' for the options of a command.
        """;

    private static readonly string RunHelp = $"""
        usage: distemu run [options]

          --preset NAME         machine preset from presets/ (default: small)
          --machine FILE.yaml   machine description file (same schema as presets; 'base: PRESET' to start from one;
                                'placement:' maps node ranges to silos, see README)
          --workload NAME       {string.Join(" | ", Workloads.Names)} (default: page-fault1)
          --param k=v           workload parameter, repeatable (e.g. --param size_mb=4)
          --policy NAME         {string.Join(" | ", FaultPolicies.All.Select(p => p.Name()))} (default: the machine's)
          --engine orleans|sim  orleans (default): grains on a silo started in this process; sim: the deterministic engine
          --cluster URL         orleans: run on an existing cluster instead of a silo in this process; its membership
                                table: redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE
                                (adonet clustering); a lost silo aborts the run (partial results, exit 1)
          --cluster-id ID       with --cluster: the cluster's id (default: distemu)
          --service-id ID       with --cluster: the cluster's service id (default: distemu)
          --seed N              random seed (default: 1)
          --ops N               ops per task, mmap/munmap/accesses all count (default: {DefaultOps})
          --duration T          stop after T of host time (e.g. 10s, 500ms, 2m); the results are complete as of then
          --trace-file PATH     write spans (emulated timeline by default): PATH.json (Jaeger JSON, opens in
                                Jaeger UI's upload) or PATH.jsonl (OTLP JSON lines)
          --otlp URL            export spans and metrics over OTLP (gRPC, e.g. http://localhost:4317; Jaeger's
                                native intake); the OTEL_EXPORTER_OTLP_* variables work too
          --trace-sample R      keep this fraction of traces (default 1); retried faults and violations always kept
          --trace-contended NS  keep only traces with a wait or hold of at least NS emulated ns
          --trace-max-spans N   write at most N spans: whole traces past it are left out, and counted
          --trace-clock emulated|host
                                span times: the emulated machine's (default; the run's start + emulated ns) or the
                                host's (when the emulator did the work; emulated times stay in the attributes)
          --trace-orleans       with --trace-clock host, --otlp and the orleans engine's silo in this process:
                                Orleans' own spans (Microsoft.Orleans.*) join the traces of the faults that made them
          --quantum NS          orleans: keep every CPU within NS emulated ns of the slowest running one
                                (default: lax, no bound — fastest, but contention that overlaps only in emulated
                                time is missed; 1000 makes host order follow emulated time)
          --tasks N             tasks (one per CPU; default: every CPU)
          --sanitizer on|off    check the protocol invariants (default: on)
          --explore             sim: schedule exploration on (seeded preemption delays, leaning on the window right
                                after a lock is dropped), exactly as distemu explore runs a seed: reproduces its findings
          --exact               sim: no run-ahead; every task waits its turn at every sync point. The results
                                (counters, lock statistics, histograms, reports, event_log hash) are the same; it is
                                slower, and there to check that they are
          --bug NAME            switch a historical bug back in (PROTOCOL.md §8), repeatable (the fork and
                                mm_lock_seq ones under the sim engine only):
        {BugHelp}
          --out DIR             results folder (default: results/<yyyyMMdd-HHmmss>-<preset>-<workload>)

        trace replay (perf script --show-mmap-events -F tid,time,addr,event, plain or .gz; sim engine unless --engine orleans):
          --trace FILE          replay this trace instead of a workload (distemu replay FILE is the short form)
          --time-scale X        think time between a thread's ops = trace time gap × X (default: 1)
          --as-fast-as-possible ignore the trace's timestamps
          --replicate N         N copies of the traced process on other CPUs and nodes (default: 1)
          --shared-mm           the copies are threads of one process instead of separate processes
          --cpu-map tid=cpu,... place threads on CPUs (default: spread over the nodes)
          --lenient             skip malformed lines (counted in replay.json) instead of stopping at the first
          -h, --help            show this help
        """;

    /// <summary>A --bug value: one of the switch names, else a usage error listing them.</summary>
    internal static string ParseBug(string name) => DistEmu.Kernel.BugSwitches.Names.ContainsKey(name) ? name
        : throw new UsageException($"--bug '{name}': unknown bug switch; expected one of {string.Join(", ", DistEmu.Kernel.BugSwitches.Names.Keys)}");

    /// <summary>The --bug names with what each puts back, indented for the help texts.</summary>
    internal static string BugHelp => string.Join("\n", DistEmu.Kernel.BugSwitches.Names.Select(b => $"                          {b.Key}: {b.Value}"));

    private const string PresetsHelp = """
        usage: distemu presets

        Lists the machine presets in presets/*.yaml: name, nodes, CPUs, memory.
        """;

    private const string ClusterHelp = """
        usage: distemu cluster status [--cluster URL] [--cluster-id ID] [--service-id ID]

        Lists the silos of a cluster (address, status) and, per silo, the DistEmu grains it hosts by emulated node
        and kind. --cluster is redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE; it defaults to
        $DISTEMU_CLUSTER, else redis://127.0.0.1:6379; the ids default to distemu.
        """;

    private const string DbHelp = """
        usage: distemu db init --cluster postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE

        Creates Orleans' PostgreSQL membership tables and queries (deploy/sql: PostgreSQL-Main.sql, then
        PostgreSQL-Clustering.sql) in DATABASE, in one transaction, so silos can run with --clustering adonet.
        Idempotent: on an initialised database it says so and changes nothing. Without a password in the URL,
        PGPASSWORD or ~/.pgpass. --cluster defaults to $DISTEMU_CLUSTER.
        """;

    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
            {
                stdout.WriteLine(MainHelp);
                return args.Length == 0 ? 2 : 0;
            }
            var rest = args.Skip(1).ToArray();
            switch (args[0])
            {
                case "run":
                    if (rest.Any(a => a is "-h" or "--help")) { stdout.WriteLine(RunHelp); return 0; }
                    return RunCommand(RunOptions.Parse(rest), stdout, stderr);
                case "replay":
                    if (rest.Any(a => a is "-h" or "--help")) { stdout.WriteLine(RunHelp); return 0; }
                    if (rest.Length == 0 || rest[0].StartsWith("--", StringComparison.Ordinal))
                        throw new UsageException("replay: expected a trace file: distemu replay FILE [run options]");
                    return RunCommand(RunOptions.Parse(rest[1..], trace: rest[0]), stdout, stderr);
                case "experiment":
                    return ExperimentCommand.Run(rest, stdout, stderr);
                case "explore":
                    return ExploreCommand.Run(rest, stdout, stderr);
                case "presets":
                    if (rest.Any(a => a is "-h" or "--help")) { stdout.WriteLine(PresetsHelp); return 0; }
                    if (rest.Length > 0) throw new UsageException($"presets: unexpected argument '{rest[0]}'");
                    return Presets(stdout);
                case "cluster":
                    if (rest.Any(a => a is "-h" or "--help")) { stdout.WriteLine(ClusterHelp); return 0; }
                    return ClusterCommand(rest, stdout);
                case "db":
                    if (rest.Any(a => a is "-h" or "--help")) { stdout.WriteLine(DbHelp); return 0; }
                    return DbCommand(rest, stdout, stderr);
                case "silo":
                    return SiloProgram.RunAsync(rest, stdout, stderr).GetAwaiter().GetResult();
                default:
                    throw new UsageException($"unknown command '{args[0]}'; expected run, replay, presets, experiment, explore, cluster, db or silo (see distemu --help)");
            }
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 2;
        }
        catch (KernelConfigException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 2;
        }
        catch (PerfTraceFormatException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message} (--lenient skips such lines)");
            return 2;
        }
        catch (ClusterUnreachableException e)
        {
            stderr.WriteLine($"distemu: error: {e.Message}");
            return 1;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"distemu: error: the run failed: {e.GetType().Name}: {e.Message}");
            stderr.WriteLine(e.ToString());
            return 1;
        }
    }

    private static int ClusterCommand(string[] args, TextWriter stdout)
    {
        if (args.Length == 0 || args[0] != "status")
            throw new UsageException("cluster: expected 'status' (distemu cluster status [--cluster URL])");
        string? connection = null, clusterId = null, serviceId = null;
        var r = new OptionReader(args[1..], m => new UsageException(m));
        while (r.Next())
        {
            switch (r.Current)
            {
                case "--cluster": connection = r.Value(); break;
                case "--cluster-id": clusterId = r.Value(); break;
                case "--service-id": serviceId = r.Value(); break;
                default: throw new UsageException($"cluster status: unknown option '{r.Raw}' (see distemu cluster --help)");
            }
        }
        connection ??= Environment.GetEnvironmentVariable("DISTEMU_CLUSTER") is { Length: > 0 } env ? env : "redis://127.0.0.1:6379";
        return ClusterStatus.Run(ClusterTarget.Parse(connection, clusterId, serviceId), stdout);
    }

    private static int DbCommand(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0 || args[0] != "init")
            throw new UsageException("db: expected 'init' (distemu db init --cluster postgres://USER@HOST:PORT/DATABASE)");
        string? connection = null;
        var r = new OptionReader(args[1..], m => new UsageException(m));
        while (r.Next())
        {
            switch (r.Current)
            {
                case "--cluster": connection = r.Value(); break;
                default: throw new UsageException($"db init: unknown option '{r.Raw}' (see distemu db --help)");
            }
        }
        connection ??= Environment.GetEnvironmentVariable("DISTEMU_CLUSTER") is { Length: > 0 } env ? env
            : throw new UsageException("db init: needs --cluster postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE");
        var membership = Membership.ParseUrl(connection, m => new UsageException(m), "--cluster");
        if (membership.Kind != "adonet")
            throw new UsageException($"db init --cluster '{membership.Url}': only a PostgreSQL database has tables to create (redis needs none)");
        return DbInit.Run(membership, stdout, stderr);
    }

    private static int Presets(TextWriter stdout)
    {
        var rows = MachineLoader.PresetNames().Select(n =>
        {
            var m = MachineLoader.LoadPreset(n);
            return new[]
            {
                n, m.Nodes.ToString(CultureInfo.InvariantCulture), m.Cpus.ToString(CultureInfo.InvariantCulture),
                MachineLoader.FormatBytes(m.MemoryPerNodeBytes), MachineLoader.FormatBytes(m.MemoryBytes), m.Policy.Name(),
            };
        }).ToList();
        stdout.Write(Report.Table(["preset", "nodes", "cpus", "memory/node", "memory", "policy"], rows));
        return 0;
    }

    private static int RunCommand(RunOptions o, TextWriter stdout, TextWriter stderr)
    {
        // Everything is validated before the results folder is created.
        if (o.Engine is not ("sim" or "orleans"))
            throw new UsageException($"--engine '{o.Engine}': unknown engine; expected sim or orleans");
        var (machine, placement) = o.MachineFile != null ? MachineLoader.LoadFileWithPlacement(o.MachineFile) : (MachineLoader.LoadPreset(o.Preset), null);
        if (o.Policy != null) machine = machine with { Policy = FaultPolicies.Parse(o.Policy) };
        ClusterTarget? cluster = null;
        if (o.Cluster != null)
        {
            if (o.Engine != "orleans")
                throw new UsageException($"--cluster: runs on the orleans engine (not --engine {o.Engine})");
            if (o.Trace != null)
                throw new UsageException("--cluster: trace replay runs on the sim engine or an embedded silo (--engine orleans), not on a cluster");
            cluster = ClusterTarget.Parse(o.Cluster, o.ClusterId, o.ServiceId);
        }
        else if (o.ClusterId != null || o.ServiceId != null)
            throw new UsageException($"{(o.ClusterId != null ? "--cluster-id" : "--service-id")}: only with --cluster");
        if (o.Explore && (o.Engine != "sim" || o.Trace != null))
            throw new UsageException(o.Trace != null ? "--explore: explores a workload's schedules, not a trace replay"
                : $"--explore: schedule exploration is the sim engine's (add --engine sim; not --engine {o.Engine})");
        if (o.Exact && o.Engine != "sim")
            throw new UsageException($"--exact: run-ahead is the sim engine's (add --engine sim; not --engine {o.Engine})");
        if (o.Explore && !o.Sanitizer)
            throw new UsageException("--explore: needs the sanitizer (drop --sanitizer off); the findings are its reports");
        if (o.Bugs.Count > 0 && o.Trace != null)
            throw new UsageException("--bug: switches bugs into a workload's run, not a trace replay");
        if (o.Engine != "sim" && o.Bugs.FirstOrDefault(DistEmu.Kernel.BugSwitches.SimOnly.Contains) is { } simOnly)
            throw new UsageException($"--bug {simOnly}: its path exists under the sim engine only (add --engine sim)");
        if (o.Trace != null && ReplayEngine(o) == "orleans" && o.Replicate != 1 && !o.SharedMm)
            throw new UsageException($"--replicate {o.Replicate}: the orleans engine replays copies as threads of one process (add --shared-mm, or use --engine sim)");
        if (cluster is null && o.Engine == "orleans")
            MachineLoader.CheckPlacement(placement, 1, "one silo in this process; --cluster runs on more"); // a cluster's silos are counted when attached
        if (o.Trace != null && !File.Exists(o.Trace))
            throw new UsageException($"--trace {o.Trace}: no such file");
        var workload = o.Trace is null ? Workloads.Create(o.Workload, o.Params) : null; // throws KernelConfigException on a bad name or param
        if (workload is { Forks: true } && o.Engine != "sim")
            throw new UsageException($"--workload {workload.Name}: it forks, and fork runs on the sim engine only (add --engine sim)");
        int tasks = o.Tasks ?? machine.Cpus;
        if (tasks < 1 || tasks > machine.Cpus)
            throw new UsageException($"--tasks {tasks}: must be in 1..{machine.Cpus} (one task per CPU)");
        if (o.Ops < 1) throw new UsageException($"--ops {o.Ops}: must be at least 1");
        workload?.CheckFits(new WorkloadContext(machine, tasks, o.Seed)); // before anything is launched

        var label = o.MachineFile != null ? machine.Name : o.Preset;
        string what = o.Trace is null ? o.Workload : "replay-" + Path.GetFileName(o.Trace).Split('.')[0];
        var outDir = ResultsFolder.Claim(o.Out ?? Path.Combine("results", $"{DateTime.Now:yyyyMMdd-HHmmss}-{label}-{what}"));

        RunResult result;
        (string, IReadOnlyDictionary<string, string>) described;
        var extraFiles = new Dictionary<string, string>();
        if (o.Trace != null)
        {
            stdout.WriteLine($"replaying {o.Trace} on {label} under {machine.Policy.Name()} ({ReplayEngine(o)} engine)");
            (result, described, extraFiles["replay.json"]) = Replay(o, machine);
        }
        else
        {
            result = RunWorkload(o, machine, tasks, label, stdout, cluster, placement);
            described = (workload!.Name, workload.Params);
        }
        var report = new Report(result, machine, described, o, label);
        var summary = report.Summary();
        stdout.Write(summary);

        ResultsFolder.Write(outDir, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "config.yaml"), report.ConfigYaml() + MachineLoader.PlacementYaml(placement));
            File.WriteAllText(Path.Combine(dir, "stats.json"), report.StatsJson());
            File.WriteAllText(Path.Combine(dir, "vmstat"), report.VmStat());
            File.WriteAllText(Path.Combine(dir, "lock_stat"), report.LockStat());
            File.WriteAllText(Path.Combine(dir, "summary.md"), "```\n" + summary + "```\n");
            foreach (var (name, text) in extraFiles)
                File.WriteAllText(Path.Combine(dir, name), text);
        });
        stdout.WriteLine($"results: {outDir}");
        if (result.Status != "completed")
        {
            stderr.WriteLine($"distemu: run {result.Status}: {result.Reason}; partial results in {outDir}");
            return 1;
        }
        return 0;
    }

    private static RunResult RunWorkload(RunOptions o, MachineSpec machine, int tasks, string label, TextWriter stdout, ClusterTarget? cluster, PlacementMap? placement)
    {
        var runOptions = new SimRunOptions
        {
            Machine = machine,
            Workload = o.Workload,
            Params = o.Params,
            Seed = o.Seed,
            OpsPerTask = o.Ops,
            Tasks = tasks,
            Sanitizer = o.Sanitizer,
            Exploration = o.Explore ? Exploration.Default : null,
            Bugs = o.Bugs,
            RunAhead = !o.Exact,
        };
        // Telemetry is opened now, so an unwritable trace file fails before the run starts.
        using var telemetry = new RunTelemetry(o, machine, o.Engine);
        if (telemetry.Recorder != null)
            runOptions = runOptions with { Observer = telemetry.Recorder };
        // Ctrl-C stops every task after its current op; the partial results are written with status "aborted".
        bool interrupted = false;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;
            interrupted = true;
        };
        Console.CancelKeyPress += onCancel;
        stdout.WriteLine($"running {o.Workload} on {label} under {machine.Policy.Name()} ({o.Engine} engine{(cluster is null ? "" : ", " + cluster)}); Ctrl-C stops it and keeps the partial results");
        stdout.Flush();
        try
        {
            var every = System.Diagnostics.Stopwatch.StartNew();
            runOptions = runOptions with
            {
                // The sim engine's progress, in the same plain lines the orleans engine prints.
                Progress = (m, emulatedNs) =>
                {
                    if (every.Elapsed < TimeSpan.FromSeconds(2)) return;
                    every.Restart();
                    double emuS = emulatedNs / 1e9;
                    stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"progress: {m.VmStat.Faults:N0} faults, {(emuS > 0 ? m.VmStat.Faults / emuS : 0):N0} emulated faults/s, {m.VmStat.Faults / clock.Elapsed.TotalSeconds:N0} host faults/s"));
                },
                Stop = () => interrupted ? new RunStop(true, "interrupted (Ctrl-C)")
                    : o.Duration is { } d && clock.Elapsed >= d ? new RunStop(false, $"--duration {o.DurationText} reached") : null,
            };
            var result = o.Engine == "sim" ? SimRun.Run(runOptions)
                : cluster != null ? AttachedOrleans.Run(cluster, runOptions, o.Quantum, stdout, placement, telemetry.Orleans)
                : EmbeddedOrleans.Run(runOptions, o.Quantum, stdout, placement, telemetry.Orleans);
            telemetry.Finish(result);
            return result;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>A trace replays on the sim engine unless --engine orleans is given (the sim engine is the exact reference).</summary>
    private static string ReplayEngine(RunOptions o) => o.EngineGiven ? o.Engine : "sim";

    /// <summary>A perf trace replayed under the sim engine, or fed to the CPU grains of an embedded silo; its report goes to replay.json.</summary>
    private static (RunResult, (string, IReadOnlyDictionary<string, string>), string) Replay(RunOptions o, MachineSpec machine)
    {
        var options = new ReplayOptions
        {
            TimeScale = o.TimeScale,
            AsFastAsPossible = o.AsFastAsPossible,
            Replicate = o.Replicate,
            SharedMm = o.SharedMm,
            CpuMap = o.CpuMap is null ? null : ReplayOptions.ParseCpuMap(o.CpuMap),
            Seed = o.Seed,
            Sanitizer = o.Sanitizer,
            ParseMode = o.Lenient ? PerfParseMode.Lenient : PerfParseMode.Strict,
        };
        var parameters = new Dictionary<string, string>
        {
            ["file"] = o.Trace!,
            ["time_scale"] = o.TimeScale.ToString(CultureInfo.InvariantCulture),
            ["as_fast_as_possible"] = o.AsFastAsPossible ? "true" : "false",
            ["replicate"] = o.Replicate.ToString(CultureInfo.InvariantCulture),
            ["shared_mm"] = o.SharedMm ? "true" : "false",
            ["mode"] = o.Lenient ? "lenient" : "strict",
        };
        // Opened now, so an unwritable trace file fails before the replay starts.
        using var telemetry = new RunTelemetry(o, machine, ReplayEngine(o));
        if (ReplayEngine(o) == "orleans")
        {
            var fed = EmbeddedOrleans.Replay(o.Trace!, machine, options, telemetry.Orleans);
            telemetry.Finish(fed.Run);
            return (fed.Run, ("trace", parameters), fed.Report.ToJson());
        }
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var r = TraceReplay.RunSim(o.Trace!, machine, options with { Observer = telemetry.Recorder });
        sw.Stop();
        var result = new RunResult
        {
            Machine = r.Machine,
            Options = new SimRunOptions { Machine = machine, Workload = "trace", Seed = o.Seed, Sanitizer = o.Sanitizer },
            PerTask = r.PerTask,
            Tasks = r.PerTask.Count,
            EmulatedNs = r.Harness.MaxClock,
            HostSeconds = sw.Elapsed.TotalSeconds,
            Stalled = r.Harness.Stalled,
            EngineEvents = r.Harness.Engine.EventsRun,
        };
        telemetry.Finish(result);
        return (result, ("trace", parameters), r.Report.ToJson());
    }
}
