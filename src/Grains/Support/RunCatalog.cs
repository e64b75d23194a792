using DistEmu.Abstractions;
using DistEmu.Kernel.Machine;

namespace DistEmu.Grains.Support;

/// <summary>What every grain of one run reads and none changes: its configuration and the machine spec parsed from it.</summary>
public sealed class RunDescription(RunConfig config, MachineSpec spec)
{
    public RunConfig Config { get; } = config;
    public MachineSpec Spec { get; } = spec;

    /// <summary>
    /// Whether one fault of the run may take a 2 MiB folio (512 frames) rather than one frame: a replay's mappings
    /// inherit the machine's THP mode, a workload says (<see cref="Kernel.Workloads.Workload.MayMapHugePages"/>).
    /// </summary>
    public bool HugePagesPossible { get; } = config.Script is not null || !Kernel.Workloads.Workloads.Names.Contains(config.Workload)
        ? spec.Thp == Kernel.Machine.TransparentHugepage.Always // a script, or a replay's batches
        : Kernel.Workloads.Workloads.Create(config.Workload, config.Params).MayMapHugePages(spec);

    /// <summary>The CPU each task runs on: the configuration's list, or the tasks spread over the nodes as the sim engine spreads them.</summary>
    public static int[] CpusOfTasks(RunConfig config, MachineSpec spec) =>
        Enumerable.Range(0, config.Tasks).Select(i => config.Cpus is { } cpus ? cpus[i] : Kernel.Sim.SimRun.Spread(i, spec)).ToArray();

    private Dictionary<int, int>? _taskOfCpu;

    /// <summary>The index of the task CPU <paramref name="cpu"/> runs (its rank among CPUs at one emulated ns; -1: none).</summary>
    public int TaskOf(int cpu)
    {
        var map = _taskOfCpu ??= CpusOfTasks(Config, Spec).Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        return map.GetValueOrDefault(cpu, -1);
    }
}

/// <summary>
/// The silo's runs (one singleton per silo, injected into the grains): each run's <see cref="RunDescription"/>, read from
/// its machine grain once per silo and shared by every grain of the run here. A grain used to fetch the configuration
/// and parse the machine JSON for itself; on a 4,096-CPU machine (a 64 × 64 distance matrix) that was ~19 KB of spec
/// and a copy of the configuration per grain, and 4,096 calls to the machine grain at launch. Immutable data only, so
/// sharing it changes nothing a grain computes.
/// A run is held weakly: once no grain of it is left on this silo its description can go, and a later grain of the
/// run (a fresh activation) fetches it again.
/// </summary>
public sealed class RunCatalog
{
    private readonly object _lock = new();
    private readonly Dictionary<string, WeakReference<RunDescription>> _runs = new();
    /// <summary>Reads under way: every grain that asks meanwhile waits for the same one.</summary>
    private readonly Dictionary<string, Task<RunDescription>> _reading = new();
    private long _reads;

    /// <summary>How many times this silo read a run's configuration from its machine grain.</summary>
    public long Reads => Interlocked.Read(ref _reads);

    /// <summary>The description of run <paramref name="run"/>, read from its machine grain if this silo has none.</summary>
    public Task<RunDescription> Get(IGrainFactory grains, string run)
    {
        lock (_lock)
        {
            if (_runs.TryGetValue(run, out var weak) && weak.TryGetTarget(out var known))
                return Task.FromResult(known);
            if (_reading.TryGetValue(run, out var reading))
                return reading;
            reading = Read(grains, run);
            if (!reading.IsCompleted) _reading[run] = reading; // one that failed at once is not kept
            return reading;
        }
    }

    private async Task<RunDescription> Read(IGrainFactory grains, string run)
    {
        try
        {
            Interlocked.Increment(ref _reads);
            var config = await grains.GetGrain<IMachineGrain>(run).GetConfig();
            var description = new RunDescription(config, MachineJson.Deserialize(config.MachineJson));
            lock (_lock)
            {
                // Runs whose grains are all gone from this silo are forgotten as new ones arrive.
                foreach (var gone in _runs.Where(r => !r.Value.TryGetTarget(out _)).Select(r => r.Key).ToList())
                    _runs.Remove(gone);
                _runs[run] = new WeakReference<RunDescription>(description);
            }
            return description;
        }
        finally
        {
            lock (_lock) _reading.Remove(run);
        }
    }
}
