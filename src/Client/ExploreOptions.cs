using DistEmu.Kernel.Machine;

namespace DistEmu.Client;

/// <summary>The options of <c>distemu explore</c>, filled from the command line (<see cref="ExploreCommandLine"/>).</summary>
public sealed record ExploreOptions
{
    /// <summary>Short runs, many seeds: races live in the interleavings, not in long runs (as the exploration tests do).</summary>
    public const long DefaultOps = 150;
    public const int DefaultSchedules = 1000;
    /// <summary>About an hour of the default exploration on a 2-core host; each schedule's outcome is kept until the report.</summary>
    public const int MaxSchedules = 1_000_000;

    public List<FaultPolicy> Policies { get; init; } = [.. FaultPolicies.All];
    public string Preset { get; init; } = "small";
    public string? MachineFile { get; init; }
    public string Workload { get; init; } = "migrate-munmap";
    public Dictionary<string, string> Params { get; init; } = new(StringComparer.Ordinal);
    public int Schedules { get; init; } = DefaultSchedules;
    public long Seed { get; init; } = 1;
    public long Ops { get; init; } = DefaultOps;
    public int? Tasks { get; init; }
    public int Jobs { get; init; } = Environment.ProcessorCount;
    public List<string> Bugs { get; init; } = [];
    public bool StopAtFirst { get; init; }
    public bool ExpectClean { get; init; }
    public TimeSpan? Duration { get; init; }
    public string? DurationText { get; init; }
    public string? Out { get; init; }
}
