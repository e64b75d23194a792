using System.Globalization;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu experiment</c>, parsed by hand; every error is a <see cref="UsageException"/> naming the option.</summary>
public sealed class ExperimentOptions
{
    /// <summary>Ops per task by default: enough for migrate-munmap to show the policies' effects, small enough that the
    /// six-policy comparison on <c>small</c> takes seconds on the sim engine.</summary>
    public const long DefaultOps = 3000;

    /// <summary>Orleans: keep every CPU within this many emulated ns of the slowest, so emulated contention is modelled.</summary>
    public const long DefaultQuantum = 1000;

    /// <summary>Local silo processes at most per point: each is a .NET process of a few hundred MiB.</summary>
    public const int MaxSilos = 16;

    public const string Help = """
        usage: distemu experiment [options]

        Runs a matrix — every policy × preset × workload × CPU count × repeat — and writes a results folder:
        results.csv (one row per run), report.md (the table and the policy-comparison verdicts of PROTOCOL.md §5)
        and PNG plots (emulated faults/s per policy for each workload, writer-wait p99 and migration-wait p99 per policy).

          --policies all|a,b    fault policies (default: all): mmap-only, vma-bailout, vma-unlocked, lock-dropped, merged, ptl-drop
          --presets a,b         machine presets (default: small)
          --workloads a,b       workloads (default: migrate-munmap)
          --cpus 1,8,...        tasks, one per CPU (default: every CPU of the preset); a cpus=1 point gives scaling efficiency
          --engine sim|orleans  sim (default): the deterministic engine, with schedule exploration (seeded preemption
                                delays) so the unsafe policies' races can show, and runs comparable across policies;
                                orleans: a silo in this process per run, --quantum 1000 by default
          --no-explore          sim: no schedule exploration; tasks run ahead where they provably do not interact
                                (several times faster on page-fault loops), but races that need a delay do not show
          --quantum NS          orleans: emulated-time bound between CPUs (default: 1000)
          --silos 1,2,...       orleans on silo processes: for each count, start that many silos on loopback (redis
                                membership: a redis-server started here unless --cluster), measure the grain-call
                                cost within and across silos, run the matrix on them, stop them all; adds per-silo
                                throughput, calls per fault and the scaling model to results.csv and report.md
          --cluster URL         with --silos: the membership table for the silos started (redis://HOST:PORT or
                                postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE after distemu db init)
          --ops N               ops per task (default: 3000)
          --repeat N            runs of each point, with seeds seed, seed+1, ... (default: 1)
          --param k=v           workload parameter, repeatable; applies to each listed workload that takes it
          --seed N              first seed (default: 1)
          --out DIR             results folder (default: results/<yyyyMMdd-HHmmss>-experiment); written as DIR.tmp-PID, renamed at the end
          -h, --help            show this help
        """;

    public List<FaultPolicy> Policies { get; } = [.. FaultPolicies.All];
    public List<string> Presets { get; } = ["small"];
    public List<string> Workloads { get; } = ["migrate-munmap"];
    public List<int>? Cpus { get; private set; }
    public string Engine { get; private set; } = "sim";
    /// <summary>Sim engine: schedule exploration on each run (default), or off (--no-explore: exact results, run-ahead).</summary>
    public bool Explore { get; private set; } = true;
    /// <summary>Silo counts to run the matrix on, each as local silo processes (null: the sim engine or one embedded silo).</summary>
    public List<int>? Silos { get; private set; }
    /// <summary>With --silos: the membership table the local silos use (null: a redis-server started for them).</summary>
    public DistEmu.Silo.Membership? Cluster { get; private set; }
    public long Quantum { get; private set; } = DefaultQuantum;
    public long Ops { get; private set; } = DefaultOps;
    public int Repeat { get; private set; } = 1;
    public Dictionary<string, string> Params { get; } = new(StringComparer.Ordinal);
    public long Seed { get; private set; } = 1;
    public string? Out { get; private set; }

    private static List<string> List(string option, string v)
    {
        var items = v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();
        if (items.Count == 0) throw new UsageException($"{option} '{v}': expected a comma-separated list");
        if (items.Distinct(StringComparer.Ordinal).Count() != items.Count)
            throw new UsageException($"{option} '{v}': an item is listed twice");
        return items;
    }

    /// <summary>A --policies value (experiment, explore): "all", or policy names separated by commas, each once.</summary>
    internal static List<FaultPolicy> ParsePolicies(string value)
    {
        if (value == "all") return [.. FaultPolicies.All];
        var policies = new List<FaultPolicy>();
        foreach (var name in List("--policies", value))
        {
            var match = FaultPolicies.All.Where(p => p.Name() == name).ToList();
            if (match.Count == 0)
                throw new UsageException($"--policies '{name}': unknown policy; expected all or some of {string.Join(", ", FaultPolicies.All.Select(p => p.Name()))}");
            policies.Add(match[0]);
        }
        return policies;
    }

    public static ExperimentOptions Parse(string[] args)
    {
        var o = new ExperimentOptions();
        bool engineGiven = false;
        var reader = new DistEmu.Silo.OptionReader(args, m => new UsageException(m));
        while (reader.Next())
        {
            var a = reader.Current;
            string Value() => reader.Value();
            switch (a)
            {
                case "--policies":
                    o.Policies.Clear();
                    o.Policies.AddRange(ParsePolicies(Value()));
                    break;
                case "--presets":
                    o.Presets.Clear();
                    o.Presets.AddRange(List(a, Value()));
                    break;
                case "--workloads":
                    var wl = List(a, Value());
                    foreach (var w in wl)
                        if (!DistEmu.Kernel.Workloads.Workloads.Names.Contains(w))
                            throw new UsageException($"--workloads '{w}': unknown workload; expected some of {string.Join(", ", DistEmu.Kernel.Workloads.Workloads.Names)}");
                    o.Workloads.Clear();
                    o.Workloads.AddRange(wl);
                    break;
                case "--cpus":
                    var cv = Value();
                    o.Cpus = List(a, cv).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
                        ? n : throw new UsageException($"--cpus '{s}': expected a positive integer")).ToList();
                    break;
                case "--engine":
                    o.Engine = Value();
                    engineGiven = true;
                    if (o.Engine is not ("sim" or "orleans"))
                        throw new UsageException($"--engine '{o.Engine}': unknown engine; expected sim or orleans");
                    break;
                case "--quantum":
                    o.Quantum = reader.Long();
                    if (o.Quantum < 0) throw new UsageException($"--quantum {o.Quantum}: must be >= 0");
                    break;
                case "--silos":
                    o.Silos = List(a, Value()).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= MaxSilos
                        ? n : throw new UsageException($"--silos '{s}': expected silo counts in 1..{MaxSilos}")).ToList();
                    break;
                case "--cluster":
                    o.Cluster = DistEmu.Silo.Membership.ParseUrl(Value(), m => new UsageException(m), a);
                    break;
                case "--ops":
                    o.Ops = reader.Long();
                    if (o.Ops < 1) throw new UsageException($"--ops {o.Ops}: must be at least 1");
                    break;
                case "--repeat":
                    var r = reader.Long();
                    o.Repeat = r is >= 1 and <= 1000 ? (int)r : throw new UsageException($"--repeat {r}: must be in 1..1000");
                    break;
                case "--param":
                    var (key, value) = reader.KeyValue();
                    o.Params[key] = value;
                    break;
                case "--seed": o.Seed = reader.Long(); break;
                case "--out": o.Out = Value(); break;
                case "--no-explore": o.Explore = false; break;
                default: throw new UsageException($"experiment: unknown option '{reader.Raw}' (see distemu experiment --help)");
            }
        }
        if (o.Policies.Count == 0) throw new UsageException("--policies: no policy given");
        if (o.Silos != null)
        {
            if (engineGiven && o.Engine != "orleans")
                throw new UsageException($"--silos: runs silo processes on the orleans engine (not --engine {o.Engine})");
            o.Engine = "orleans";
        }
        else if (o.Cluster != null)
            throw new UsageException("--cluster: only with --silos (the membership table of the silos started here)");
        if (!o.Explore && o.Engine != "sim")
            throw new UsageException($"--no-explore: schedule exploration is the sim engine's (the {o.Engine} engine never explores)");
        return o;
    }
}
