using DistEmu.Kernel.Machine;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu explore</c>; every error is a <see cref="UsageException"/> naming the option.</summary>
public sealed class ExploreOptions
{
    /// <summary>Short runs, many seeds: races live in the interleavings, not in long runs (as the exploration tests do).</summary>
    public const long DefaultOps = 150;
    public const int DefaultSchedules = 1000;
    /// <summary>About an hour of the default exploration on a 2-core host; each schedule's outcome is kept until the report.</summary>
    public const int MaxSchedules = 1_000_000;

    public static readonly string Help = $"""
        usage: distemu explore [options]

        Schedule exploration: runs one workload under many seeds on the sim engine with exploration on (seeded
        preemption delays, leaning on the window right after a lock is dropped), for each policy, and reports what
        the sanitizer finds (PROTOCOL.md §7 invariants, stalled tasks, frames not conserved) with the seeds that show
        it and the command that reproduces the first. Schedules run on every host core; the report does not depend
        on how many. Writes explore.json and summary.md to a results folder.

          --policies all|a,b    fault policies (default: all): {string.Join(", ", FaultPolicies.All.Select(p => p.Name()))}
          --preset NAME         machine preset (default: small)
          --machine FILE.yaml   machine description file instead of a preset
          --workload NAME       {string.Join(" | ", DistEmu.Kernel.Workloads.Workloads.Names)} (default: migrate-munmap)
          --param k=v           workload parameter, repeatable
          --schedules N         seeds per policy (default: {DefaultSchedules})
          --seed N              first seed (default: 1): seeds N, N+1, ... N+schedules-1
          --ops N               ops per task of each schedule (default: {DefaultOps})
          --tasks N             tasks, one per CPU (default: every CPU)
          --bug NAME            switch a historical bug back in (PROTOCOL.md §8), repeatable; does exploration find it?
        {Cli.BugHelp}
          --jobs N              schedules run at once (default: the host's cores, {Environment.ProcessorCount} here)
          --stop-at-first       stop a policy at its first seed with a finding
          --duration T          explore for T of host time (e.g. 30s, 10m), an equal share per policy; the seeds that ran
                                are reported (always the first ones)
          --expect-clean        exit 1 if any schedule has a finding (for scripts and CI)
          --out DIR             results folder (default: results/<yyyyMMdd-HHmmss>-explore-<workload>)
          -h, --help            show this help

        Exit: 0 explored (findings are results, not errors, unless --expect-clean), 1 interrupted or --expect-clean
        with findings, 2 bad input (nothing is run or written).
        """;

    public List<FaultPolicy> Policies { get; } = [.. FaultPolicies.All];
    public string Preset { get; private set; } = "small";
    public string? MachineFile { get; private set; }
    public string Workload { get; private set; } = "migrate-munmap";
    public Dictionary<string, string> Params { get; } = new(StringComparer.Ordinal);
    public int Schedules { get; private set; } = DefaultSchedules;
    public long Seed { get; private set; } = 1;
    public long Ops { get; private set; } = DefaultOps;
    public int? Tasks { get; private set; }
    public int Jobs { get; private set; } = Environment.ProcessorCount;
    public List<string> Bugs { get; } = [];
    public bool StopAtFirst { get; private set; }
    public bool ExpectClean { get; private set; }
    public TimeSpan? Duration { get; private set; }
    public string? DurationText { get; private set; }
    public string? Out { get; private set; }

    public static ExploreOptions Parse(string[] args)
    {
        var o = new ExploreOptions();
        bool presetGiven = false;
        var r = new DistEmu.Silo.OptionReader(args, m => new UsageException(m));
        while (r.Next())
        {
            switch (r.Current)
            {
                case "--policies":
                    o.Policies.Clear();
                    o.Policies.AddRange(ExperimentOptions.ParsePolicies(r.Value()));
                    break;
                case "--preset": o.Preset = r.Value(); presetGiven = true; break;
                case "--machine": o.MachineFile = r.Value(); break;
                case "--workload":
                    o.Workload = r.Value();
                    if (!DistEmu.Kernel.Workloads.Workloads.Names.Contains(o.Workload))
                        throw new UsageException($"--workload '{o.Workload}': unknown workload; expected one of {string.Join(", ", DistEmu.Kernel.Workloads.Workloads.Names)}");
                    break;
                case "--param":
                    var (key, value) = r.KeyValue();
                    o.Params[key] = value;
                    break;
                case "--schedules":
                    var n = r.Long();
                    o.Schedules = n is >= 1 and <= MaxSchedules ? (int)n : throw new UsageException($"--schedules {n}: must be in 1..{MaxSchedules}");
                    break;
                case "--seed": o.Seed = r.Long(); break;
                case "--ops":
                    o.Ops = r.Long();
                    if (o.Ops < 1) throw new UsageException($"--ops {o.Ops}: must be at least 1");
                    break;
                case "--tasks":
                    var t = r.Long();
                    o.Tasks = t is >= 1 and <= int.MaxValue ? (int)t : throw new UsageException($"--tasks {t}: must be at least 1");
                    break;
                case "--jobs":
                    var j = r.Long();
                    o.Jobs = j is >= 1 and <= 1024 ? (int)j : throw new UsageException($"--jobs {j}: must be in 1..1024");
                    break;
                case "--bug":
                    var bug = Cli.ParseBug(r.Value());
                    if (!o.Bugs.Contains(bug)) o.Bugs.Add(bug);
                    break;
                case "--stop-at-first": o.StopAtFirst = true; break;
                case "--expect-clean": o.ExpectClean = true; break;
                case "--duration":
                    o.DurationText = r.Value();
                    o.Duration = RunOptions.ParseDuration(o.DurationText);
                    break;
                case "--out": o.Out = r.Value(); break;
                default: throw new UsageException($"explore: unknown option '{r.Raw}' (see distemu explore --help)");
            }
        }
        if (presetGiven && o.MachineFile != null)
            throw new UsageException("--preset and --machine are exclusive; in a machine file use 'base: PRESET'");
        return o;
    }
}
