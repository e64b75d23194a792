using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu experiment</c>, filled from the command line (<see cref="ExperimentCommandLine"/>).</summary>
public sealed record ExperimentOptions
{
    /// <summary>Ops per task by default: enough for migrate-munmap to show the policies' effects, small enough that the
    /// six-policy comparison on <c>small</c> takes seconds on the sim engine.</summary>
    public const long DefaultOps = 3000;

    /// <summary>Orleans: keep every CPU within this many emulated ns of the slowest, so emulated contention is modelled.</summary>
    public const long DefaultQuantum = 1000;

    /// <summary>Local silo processes at most per point: each is a .NET process of a few hundred MiB.</summary>
    public const int MaxSilos = 16;

    public List<FaultPolicy> Policies { get; init; } = [.. FaultPolicies.All];
    public List<string> Presets { get; init; } = ["small"];
    public List<string> Workloads { get; init; } = ["migrate-munmap"];
    public List<int>? Cpus { get; init; }
    public string Engine { get; init; } = "sim";
    /// <summary>Sim engine: schedule exploration on each run (default), or off (--no-explore: exact results, run-ahead).</summary>
    public bool Explore { get; init; } = true;
    /// <summary>Silo counts to run the matrix on, each as local silo processes (null: the sim engine or one embedded silo).</summary>
    public List<int>? Silos { get; init; }
    /// <summary>With --silos: the membership table the local silos use (null: a redis-server started for them).</summary>
    public DistEmu.Silo.Membership? Cluster { get; init; }
    public long Quantum { get; init; } = DefaultQuantum;
    public long Ops { get; init; } = DefaultOps;
    public int Repeat { get; init; } = 1;
    public Dictionary<string, string> Params { get; init; } = new(StringComparer.Ordinal);
    public long Seed { get; init; } = 1;
    public string? Out { get; init; }

    internal static List<string> List(string option, string v)
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
}
