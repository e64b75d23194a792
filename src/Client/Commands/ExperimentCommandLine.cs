using System.CommandLine;
using System.Globalization;
using static DistEmu.Client.OptionKinds;

namespace DistEmu.Client;

/// <summary><c>distemu experiment</c>: its options and the <see cref="ExperimentOptions"/> read from a parse.</summary>
internal sealed class ExperimentCommandLine
{
    private const string Description = """
        Runs a matrix — every policy × preset × workload × CPU count × repeat — and writes a results folder: results.csv (one row per run), report.md (the table and the policy-comparison verdicts of PROTOCOL.md §5) and PNG plots (emulated faults/s per policy for each workload, writer-wait p99 and migration-wait p99 per policy)
        """;

    private readonly Option<List<DistEmu.Kernel.Machine.FaultPolicy>?> _policies = Policies();
    private readonly Option<List<string>?> _presets = new("--presets") { HelpName = "a,b", Description = "machine presets (default: small)", CustomParser = r => Check(r, v => ExperimentOptions.List("--presets", v)) };
    private readonly Option<List<string>?> _workloads = new("--workloads")
    {
        HelpName = "a,b",
        Description = "workloads (default: migrate-munmap)",
        CustomParser = r => Check(r, v =>
        {
            var names = ExperimentOptions.List("--workloads", v);
            foreach (var w in names)
                if (!DistEmu.Kernel.Workloads.Workloads.Names.Contains(w))
                    throw new UsageException($"--workloads '{w}': unknown workload; expected some of {string.Join(", ", DistEmu.Kernel.Workloads.Workloads.Names)}");
            return names;
        }),
    };
    private readonly Option<List<int>?> _cpus = new("--cpus")
    {
        HelpName = "1,8,...",
        Description = "tasks, one per CPU (default: every CPU of the preset); a cpus=1 point gives scaling efficiency",
        CustomParser = r => Check(r, v => ExperimentOptions.List("--cpus", v).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n >= 1
            ? n : throw new UsageException($"--cpus '{s}': expected a positive integer")).ToList()),
    };
    private readonly Option<string?> _engine = Choice("--engine", "sim (default): the deterministic engine, with schedule exploration (seeded preemption delays) so the unsafe policies' races can show, and runs comparable across policies; orleans: a silo in this process per run, --quantum 1000 by default", "unknown engine", ["sim", "orleans"]);
    private readonly Option<bool> _noExplore = new("--no-explore") { Description = "sim: no schedule exploration; tasks run ahead where they provably do not interact (several times faster on page-fault loops), but races that need a delay do not show" };
    private readonly Option<long?> _quantum = Long("--quantum", "orleans: emulated-time bound between CPUs (default: 1000)", n => n >= 0 ? null : $"--quantum {n}: must be >= 0", "NS");
    private readonly Option<List<int>?> _silos = new("--silos")
    {
        HelpName = "1,2,...",
        Description = "orleans on silo processes: for each count, start that many silos on loopback (redis membership: a redis-server started here unless --cluster), measure the grain-call cost within and across silos, run the matrix on them, stop them all; adds per-silo throughput, calls per fault and the scaling model to results.csv and report.md",
        CustomParser = r => Check(r, v => ExperimentOptions.List("--silos", v).Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= ExperimentOptions.MaxSilos
            ? n : throw new UsageException($"--silos '{s}': expected silo counts in 1..{ExperimentOptions.MaxSilos}")).ToList()),
    };
    private readonly Option<DistEmu.Silo.Membership?> _cluster = new("--cluster")
    {
        HelpName = "URL",
        Description = "with --silos: the membership table for the silos started (redis://HOST:PORT or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE after distemu db init)",
        CustomParser = r => Check(r, v => DistEmu.Silo.Membership.ParseUrl(v, m => new UsageException(m), "--cluster")),
    };
    private readonly Option<long?> _ops = Long("--ops", $"ops per task (default: {ExperimentOptions.DefaultOps})", n => n >= 1 ? null : $"--ops {n}: must be at least 1");
    private readonly Option<int?> _repeat = Int("--repeat", "runs of each point, with seeds seed, seed+1, ... (default: 1)", 1, 1000, n => $"--repeat {n}: must be in 1..1000");
    private readonly Option<Dictionary<string, string>> _param = Params("workload parameter, repeatable; applies to each listed workload that takes it");
    private readonly Option<long?> _seed = Long("--seed", "first seed (default: 1)");
    private readonly Option<string?> _out = Text("--out", "DIR", "results folder (default: results/<yyyyMMdd-HHmmss>-experiment); written as DIR.tmp-PID, renamed at the end");

    public Command Create(Func<ExperimentOptions, int> run)
    {
        var command = new Command("experiment", Description.Trim())
        {
            _policies, _presets, _workloads, _cpus, _engine, _noExplore, _quantum, _silos, _cluster, _ops, _repeat, _param, _seed, _out,
        };
        CompletePresets(_presets);
        CompleteWorkloads(_workloads);
        command.SetAction(p => run(Read(p)));
        return command;
    }

    private ExperimentOptions Read(ParseResult p)
    {
        var d = new ExperimentOptions();
        var policies = p.Given(_policies) ?? d.Policies;
        if (policies.Count == 0) throw new UsageException("--policies: no policy given");
        var silos = p.Given(_silos);
        var cluster = p.GetValue(_cluster);
        bool explore = !p.GetValue(_noExplore);
        string engine = p.GetValue(_engine) ?? d.Engine;
        if (silos != null)
        {
            if (p.GetResult(_engine) != null && engine != "orleans")
                throw new UsageException($"--silos: runs silo processes on the orleans engine (not --engine {engine})");
            engine = "orleans";
        }
        else if (cluster != null)
            throw new UsageException("--cluster: only with --silos (the membership table of the silos started here)");
        if (!explore && engine != "sim")
            throw new UsageException($"--no-explore: schedule exploration is the sim engine's (the {engine} engine never explores)");
        return new ExperimentOptions
        {
            Policies = policies,
            Presets = p.Given(_presets) ?? d.Presets,
            Workloads = p.Given(_workloads) ?? d.Workloads,
            Cpus = p.Given(_cpus),
            Engine = engine,
            Explore = explore,
            Silos = silos,
            Cluster = cluster,
            Quantum = p.GetValue(_quantum) ?? d.Quantum,
            Ops = p.GetValue(_ops) ?? d.Ops,
            Repeat = p.GetValue(_repeat) ?? d.Repeat,
            Params = p.Given(_param) ?? d.Params,
            Seed = p.GetValue(_seed) ?? d.Seed,
            Out = p.GetValue(_out),
        };
    }
}
