using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sanitizer;

namespace DistEmu.Kernel.Sim;

/// <summary>
/// One kind of finding over many schedules: an invariant of PROTOCOL.md §7 the sanitizer reported at one site (the
/// kernel path and check, <see cref="Violation.Site"/>), "stall" (tasks left sleeping when the run ended) or
/// "A1-frames" (frames allocated ≠ mapped + free + in flight at the end).
/// </summary>
public sealed class ExplorationFinding
{
    public required string Invariant { get; init; }
    /// <summary>Where it was reported (for a stall or lost frames, the same as <see cref="Invariant"/>).</summary>
    public required string Site { get; init; }
    /// <summary>Every seed whose schedule showed it, ascending.</summary>
    public List<long> Seeds { get; } = [];
    public long FirstSeed => Seeds[0];
    /// <summary>The first report in the schedule of <see cref="FirstSeed"/> (with its event history), if the sanitizer made one.</summary>
    public Violation? First { get; set; }
    /// <summary>A one-line description when there is no sanitizer record (a stall, frames not conserved).</summary>
    public string? Detail { get; set; }
}

/// <summary>What the schedules of one policy showed.</summary>
public sealed class PolicyExploration
{
    public required string Policy { get; init; }
    public int Schedules { get; set; }
    public int Clean { get; set; }
    public long Faults { get; set; }
    public double HostSeconds { get; set; }
    /// <summary>Set with stop-at-first: the schedules ran were seeds up to this one.</summary>
    public long? StoppedAtSeed { get; set; }
    /// <summary>Findings by invariant and site, in the order of their first seed.</summary>
    public List<ExplorationFinding> Findings { get; } = [];
}

/// <summary>
/// Schedule exploration as a library: the same run under many seeds with <see cref="Exploration"/> on, the seeds spread
/// over host threads. Each seed's schedule is deterministic, so the outcome does not depend on how many run at once:
/// findings are merged in seed order, and a stop at the first finding keeps exactly the seeds up to it.
/// </summary>
public static class ScheduleExplorer
{
    /// <param name="template">The run to explore; its seed and exploration are replaced per schedule.</param>
    /// <param name="exploration">Exploration settings (default: <see cref="Exploration.Default"/>).</param>
    /// <param name="jobs">Schedules run at once (host threads).</param>
    /// <param name="stopAtFirst">Stop at the first seed with any finding.</param>
    /// <param name="progress">Called after each schedule with the number finished (from any thread).</param>
    /// <param name="cancel">Checked between schedules: a cancelled exploration reports the seeds it finished in order.</param>
    public static PolicyExploration Explore(SimRunOptions template, long firstSeed, int schedules, int jobs = 1,
        bool stopAtFirst = false, Exploration? exploration = null, Action<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(schedules, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(jobs, 1);
        exploration ??= Exploration.Default;
        var outcomes = new ScheduleOutcome?[schedules];
        int finished = 0;
        int next = 0;
        int stopAt = int.MaxValue; // with stopAtFirst: the lowest index with a finding so far
        var clock = System.Diagnostics.Stopwatch.StartNew();
        // Seeds are handed out in increasing order, so whatever stops the exploration (cancel, stop-at-first), the seeds
        // that ran form a prefix, bar those in flight; and every seed below a finding has run when it is reported.
        void Worker()
        {
            while (!cancel.IsCancellationRequested)
            {
                int i = Interlocked.Increment(ref next) - 1;
                if (i >= schedules || i > Volatile.Read(ref stopAt)) return;
                long seed = firstSeed + i;
                RunResult r;
                try
                {
                    r = SimRun.Run(template with { Seed = seed, Exploration = exploration, Sanitizer = true, KeepEventLog = false });
                }
                catch
                {
                    Volatile.Write(ref stopAt, -1); // the other workers take no new seed: the failure is reported at once
                    throw;
                }
                var outcome = ScheduleOutcome.Of(seed, r);
                outcomes[i] = outcome;
                progress?.Invoke(Interlocked.Increment(ref finished));
                if (stopAtFirst && !outcome.Clean)
                {
                    int seen = Volatile.Read(ref stopAt);
                    while (i < seen)
                    {
                        int was = Interlocked.CompareExchange(ref stopAt, i, seen);
                        if (was == seen) break;
                        seen = was;
                    }
                }
            }
        }
        var workers = Enumerable.Range(0, Math.Min(jobs, schedules))
            .Select(_ => Task.Factory.StartNew(Worker, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default))
            .ToArray();
        try
        {
            Task.WaitAll(workers, CancellationToken.None);
        }
        catch (AggregateException e)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.Flatten().InnerExceptions[0]);
        }

        var result = new PolicyExploration { Policy = template.Machine.Policy.Name(), HostSeconds = clock.Elapsed.TotalSeconds };
        var bySite = new Dictionary<(string, string), ExplorationFinding>();
        // Seeds count in order up to the first gap (a cancelled or broken-off schedule), so the report is a prefix.
        foreach (var o in outcomes)
        {
            if (o is null) break;
            result.Schedules++;
            result.Faults += o.Faults;
            if (o.Clean) result.Clean++;
            foreach (var (invariant, site, first, detail) in o.Findings)
            {
                if (!bySite.TryGetValue((invariant, site), out var f))
                {
                    bySite[(invariant, site)] = f = new ExplorationFinding { Invariant = invariant, Site = site, First = first, Detail = detail };
                    result.Findings.Add(f);
                }
                f.Seeds.Add(o.Seed);
            }
            if (stopAtFirst && !o.Clean)
            {
                result.StoppedAtSeed = o.Seed;
                break;
            }
        }
        return result;
    }

    /// <summary>What one schedule showed, kept small: its first report per invariant and site, not the machine.</summary>
    private sealed record ScheduleOutcome(long Seed, long Faults, List<(string Invariant, string Site, Violation? First, string? Detail)> Findings)
    {
        public bool Clean => Findings.Count == 0;

        public static ScheduleOutcome Of(long seed, RunResult r)
        {
            var m = r.Machine;
            var findings = new List<(string Invariant, string Site, Violation?, string?)>();
            foreach (var v in m.Sanitizer.Violations)
            {
                string site = v.Site ?? v.Invariant;
                if (!findings.Exists(f => f.Invariant == v.Invariant && f.Site == site))
                    findings.Add((v.Invariant, site, v, null));
            }
            if (m.Sanitizer.Total > m.Sanitizer.Violations.Count && findings.Count == 0)
                findings.Add(("sanitizer", "sanitizer", null, $"{m.Sanitizer.Total} violation(s) beyond the recorded ones"));
            if (r.Stalled.Count > 0)
                findings.Add(("stall", "stall", null, $"{r.Stalled.Count} task(s) still sleeping at the end: {string.Join("; ", r.Stalled.Take(3))}"));
            if (!m.Frames.Conserved)
                findings.Add(("A1-frames", "A1-frames", null, $"frames not conserved: {m.Frames}"));
            return new ScheduleOutcome(seed, m.VmStat.Faults, findings);
        }
    }
}
