using System.Globalization;
using DistEmu.Abstractions;
using DistEmu.Grains.Placement;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using DistEmu.Kernel.Workloads;
using DistEmu.Replay;
using DistEmu.Silo;

namespace DistEmu.Client;

/// <summary>What <c>distemu run</c> and <c>distemu replay</c> do: check everything, run, write the results folder.</summary>
internal static class RunExecution
{
    public static int Run(RunOptions o, TextWriter stdout, TextWriter stderr)
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
        var workload = o.Trace is null ? Workloads.Create(o.Workload, o.Params, exploring: o.Explore) : null; // throws KernelConfigException on a bad name or param
        if (workload is { Forks: true } && o.Engine != "sim")
            throw new UsageException($"--workload {workload.Name}: it forks, and fork runs on the sim engine only (add --engine sim)");
        int tasks = o.Tasks ?? machine.Cpus;
        if (tasks < 1 || tasks > machine.Cpus)
            throw new UsageException($"--tasks {tasks}: must be in 1..{machine.Cpus} (one task per CPU)");
        if (o.Ops < 1) throw new UsageException($"--ops {o.Ops}: must be at least 1");
        workload?.CheckFits(new WorkloadContext(machine, tasks, o.Seed)); // before anything is launched

        var label = o.MachineFile != null ? machine.Name : o.Preset;
        string what = o.Trace is null ? o.Workload : "replay-" + Path.GetFileName(o.Trace).Split('.')[0];
        foreach (var file in o.TraceFiles) OutputPaths.CheckFile("--trace-file", file);
        var outDir = ResultsFolder.Claim(o.Out ?? Path.Combine("results", $"{DateTime.Now:yyyyMMdd-HHmmss}-{label}-{what}"));

        RunResult result;
        (string, IReadOnlyDictionary<string, string>) described;
        var extraFiles = new Dictionary<string, string>();
        if (o.Trace != null)
        {
            stdout.WriteLine($"replaying {o.Trace} on {label} under {machine.Policy.Name()} ({ReplayEngine(o)} engine)");
            // The replay engines report no progress: a terminal gets a live spinner, a log nothing until the summary.
            (result, described, var replay) = ProgressDisplay.For(stdout).Show($"replaying {Path.GetFileName(o.Trace)}", _ => Replay(o, machine));
            extraFiles["replay.json"] = replay.ToJson();
            if (replay.UnreplayedProcessForks > 0)
                stderr.WriteLine($"distemu: warning: {o.Trace} forks {replay.UnreplayedProcessForks} process(es), replayed here as threads of one process " +
                                 $"({(o.SharedMm ? "--shared-mm" : "the orleans engine has no fork path")}): the faults of exec'd programs and copy-on-write breaks are missing; " +
                                 "--engine sim without --shared-mm replays each process");
            if (replay.ProcessesWithoutTaskEvents > 0)
                stderr.WriteLine($"distemu: warning: {o.Trace} maps memory in {replay.ProcessesWithoutTaskEvents} processes but holds no fork: it was printed without " +
                                 "perf script --show-task-events, so its processes are replayed as threads of one (the faults of exec'd programs and copy-on-write breaks are missing)");
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
            long opsTotal = (long)tasks * o.Ops;
            long simReports = 0;
            runOptions = runOptions with
            {
                Stop = () => interrupted ? new RunStop(true, "interrupted (Ctrl-C)")
                    : o.Duration is { } d && clock.Elapsed >= d ? new RunStop(false, $"--duration {o.DurationText} reached") : null,
            };
            var result = ProgressDisplay.For(stdout).Show($"{o.Workload} on {label}", show =>
            {
                if (o.Engine == "sim")
                {
                    // The sim engine reports every 4,096 ops (all tasks together): the count of reports gives the ops done.
                    return SimRun.Run(runOptions with
                    {
                        Progress = (m, emulatedNs) => show(ProgressSnapshot.OfRun(m.VmStat.Faults, emulatedNs, clock.Elapsed, null, null,
                            ProgressSnapshot.FractionDone(++simReports * SimRunReportEveryOps, opsTotal, clock.Elapsed, o.Duration))),
                    });
                }
                void OnStatus(RunStatus s) => show(ProgressSnapshot.OfRun(s.Faults, s.MaxClock, clock.Elapsed, s.Done, s.Tasks,
                    ProgressSnapshot.FractionDone(s.Ops, opsTotal, clock.Elapsed, o.Duration)));
                return cluster != null ? AttachedOrleans.Run(cluster, runOptions, o.Quantum, stdout, placement, telemetry.Orleans, OnStatus)
                    : EmbeddedOrleans.Run(runOptions, o.Quantum, stdout, placement, telemetry.Orleans, OnStatus);
            });
            telemetry.Finish(result);
            return result;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>How many ops (all tasks together) the sim engine runs between two progress reports (SimRun).</summary>
    private const long SimRunReportEveryOps = 4096;

    /// <summary>A trace replays on the sim engine unless --engine orleans is given (the sim engine is the exact reference).</summary>
    private static string ReplayEngine(RunOptions o) => o.EngineGiven ? o.Engine : "sim";

    /// <summary>A perf trace replayed under the sim engine, or fed to the CPU grains of an embedded silo; its report goes to replay.json.</summary>
    private static (RunResult, (string, IReadOnlyDictionary<string, string>), ReplayReport) Replay(RunOptions o, MachineSpec machine)
    {
        var options = new ReplayOptions
        {
            TimeScale = o.TimeScale,
            AsFastAsPossible = o.AsFastAsPossible,
            InferFaultKinds = !o.NoFaultKinds,
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
            ["fault_kinds"] = o.NoFaultKinds ? "off" : "inferred",
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
            return (fed.Run, ("trace", parameters), fed.Report);
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
        return (result, ("trace", parameters), r.Report);
    }
}
