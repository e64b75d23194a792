using System.CommandLine;
using DistEmu.Kernel.Machine;
using static DistEmu.Client.OptionKinds;

namespace DistEmu.Client;

/// <summary><c>distemu explore</c>: its options and the <see cref="ExploreOptions"/> read from a parse.</summary>
internal sealed class ExploreCommandLine
{
    private const string Description = """
        Schedule exploration: runs one workload under many seeds on the sim engine with exploration on (seeded preemption delays, leaning on the window right after a lock is dropped), for each policy, and reports what the sanitizer finds (PROTOCOL.md §7 invariants, stalled tasks, frames not conserved) with the seeds that show it and the command that reproduces the first. Schedules run on every host core; the report does not depend on how many. Writes explore.json and summary.md to a results folder.
        Exit: 0 explored (findings are results, not errors, unless --expect-clean), 1 interrupted or --expect-clean with findings, 2 bad input (nothing is run or written).
        """;

    private readonly Option<List<FaultPolicy>?> _policies = Policies();
    private readonly Option<string?> _preset = Text("--preset", "NAME", "machine preset (default: small)");
    private readonly Option<string?> _machine = Text("--machine", "FILE.yaml", "machine description file instead of a preset");
    private readonly Option<string?> _workload = Choice("--workload", $"{string.Join(" | ", DistEmu.Kernel.Workloads.Workloads.Names)} (default: migrate-munmap)", "unknown workload", DistEmu.Kernel.Workloads.Workloads.Names.ToList(), "NAME");
    private readonly Option<Dictionary<string, string>> _param = Params("workload parameter, repeatable");
    private readonly Option<int?> _schedules = Int("--schedules", $"seeds per policy (default: {ExploreOptions.DefaultSchedules})", 1, ExploreOptions.MaxSchedules, n => $"--schedules {n}: must be in 1..{ExploreOptions.MaxSchedules}");
    private readonly Option<long?> _seed = Long("--seed", "first seed (default: 1): seeds N, N+1, ... N+schedules-1");
    private readonly Option<long?> _ops = Long("--ops", $"ops per task of each schedule (default: {ExploreOptions.DefaultOps})", n => n >= 1 ? null : $"--ops {n}: must be at least 1");
    private readonly Option<int?> _tasks = Int("--tasks", "tasks, one per CPU (default: every CPU)", 1, int.MaxValue, n => $"--tasks {n}: must be at least 1");
    private readonly Option<List<string>> _bug = Bugs("switch a historical bug back in (PROTOCOL.md §8), repeatable; does exploration find it?");
    private readonly Option<int?> _jobs = Int("--jobs", $"schedules run at once (default: the host's cores, {Environment.ProcessorCount} here)", 1, 1024, n => $"--jobs {n}: must be in 1..1024");
    private readonly Option<bool> _stopAtFirst = new("--stop-at-first") { Description = "stop a policy at its first seed with a finding" };
    private readonly Option<(TimeSpan Time, string Text)?> _duration = Duration("explore for T of host time (e.g. 30s, 10m), an equal share per policy; the seeds that ran are reported (always the first ones)");
    private readonly Option<bool> _expectClean = new("--expect-clean") { Description = "exit 1 if any schedule has a finding (for scripts and CI)" };
    private readonly Option<string?> _out = Text("--out", "DIR", "results folder (default: results/<yyyyMMdd-HHmmss>-explore-<workload>)");

    public Command Create(Func<ExploreOptions, int> run)
    {
        var command = new Command("explore", Description.Trim())
        {
            _policies, _preset, _machine, _workload, _param, _schedules, _seed, _ops, _tasks, _bug, _jobs, _stopAtFirst, _duration, _expectClean, _out,
        };
        CompletePresets(_preset);
        command.SetAction(p => run(Read(p)));
        return command;
    }

    private ExploreOptions Read(ParseResult p)
    {
        if (p.GetResult(_preset) != null && p.GetResult(_machine) != null)
            throw new UsageException("--preset and --machine are exclusive; in a machine file use 'base: PRESET'");
        var d = new ExploreOptions();
        var duration = p.GetValue(_duration);
        return new ExploreOptions
        {
            Policies = p.Given(_policies) ?? d.Policies,
            Preset = p.GetValue(_preset) ?? d.Preset,
            MachineFile = p.GetValue(_machine),
            Workload = p.GetValue(_workload) ?? d.Workload,
            Params = p.Given(_param) ?? d.Params,
            Schedules = p.GetValue(_schedules) ?? d.Schedules,
            Seed = p.GetValue(_seed) ?? d.Seed,
            Ops = p.GetValue(_ops) ?? d.Ops,
            Tasks = p.GetValue(_tasks),
            Jobs = p.GetValue(_jobs) ?? d.Jobs,
            Bugs = p.Given(_bug) ?? d.Bugs,
            StopAtFirst = p.GetValue(_stopAtFirst),
            ExpectClean = p.GetValue(_expectClean),
            Duration = duration?.Time,
            DurationText = duration?.Text,
            Out = p.GetValue(_out),
        };
    }
}
