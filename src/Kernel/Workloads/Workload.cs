using System.Globalization;
using DistEmu.Kernel.Machine;

namespace DistEmu.Kernel.Workloads;

/// <summary>What a workload needs to know about the run it generates ops for.</summary>
public sealed record WorkloadContext(MachineSpec Machine, int Tasks, long Seed);

/// <summary>
/// A named generator of per-task op streams with documented parameters. Streams are lazy (never materialised), so
/// a run of any length costs constant memory per task.
/// </summary>
public abstract class Workload
{
    public abstract string Name { get; }
    public abstract string Description { get; }
    /// <summary>Parameter name → (default, meaning).</summary>
    public abstract IReadOnlyDictionary<string, (string Default, string Meaning)> Parameters { get; }
    /// <summary>
    /// Defaults that replace <see cref="Parameters"/>' under schedule exploration, where a run hunts races rather than
    /// measures: a setting that opens a race's window often (it is then in <see cref="Params"/>, so results and
    /// reproduce lines show it).
    /// </summary>
    public virtual IReadOnlyDictionary<string, string> ExplorationDefaults { get; } = new Dictionary<string, string>();
    /// <summary>The effective parameters (defaults overridden by the user's).</summary>
    public IReadOnlyDictionary<string, string> Params => _params;
    /// <summary>Files the workload maps, by id: (name, disk-backed).</summary>
    public virtual IReadOnlyList<(string Name, bool DiskBacked)> Files(WorkloadContext ctx) => [];
    /// <summary>
    /// The memory the workload touches at its peak (bytes), so that an impossible machine is refused before anything
    /// is built; 0 if it depends on the run.
    /// </summary>
    public virtual long PeakBytes(WorkloadContext ctx) => 0;

    /// <summary>The workload forks (an <see cref="OpKind.Fork"/> op): only the sim engine has fork's path.</summary>
    public virtual bool Forks => false;

    /// <summary>A <see cref="KernelConfigException"/> if the machine cannot hold what the workload touches.</summary>
    public void CheckFits(WorkloadContext ctx)
    {
        long need = PeakBytes(ctx);
        if (need > ctx.Machine.MemoryBytes)
            throw new KernelConfigException("memory", ctx.Machine.MemoryBytes,
                $"workload {Name} with {ctx.Tasks} tasks touches up to {need >> 20} MiB, more than the machine's {ctx.Machine.MemoryBytes >> 20} MiB");
    }

    /// <summary>The op stream of task <paramref name="task"/> (0-based), which runs on CPU <paramref name="cpu"/>.</summary>
    public abstract IEnumerable<Op> OpsFor(WorkloadContext ctx, int task, int cpu);

    private Dictionary<string, string> _params = new();

    /// <summary>Apply user parameters; an unknown name or a bad value is a <see cref="KernelConfigException"/>.</summary>
    /// <param name="exploring">Schedule exploration is on: <see cref="ExplorationDefaults"/> replace the defaults.</param>
    public Workload Configure(IReadOnlyDictionary<string, string>? user, bool exploring = false)
    {
        _params = Parameters.ToDictionary(p => p.Key, p => p.Value.Default);
        if (exploring)
            foreach (var (k, v) in ExplorationDefaults) _params[k] = v;
        if (user != null)
        {
            foreach (var (k, v) in user)
            {
                if (!Parameters.ContainsKey(k))
                    throw new KernelConfigException($"param {k}", v,
                        $"workload {Name} has no parameter '{k}'; it has {string.Join(", ", Parameters.Keys)}");
                _params[k] = v;
            }
        }
        foreach (var k in Parameters.Keys) Validate(k);
        return this;
    }

    protected virtual void Validate(string key)
    {
        if (key == ThpParam) ThpHint();
        else Long(key);
    }

    /// <summary>
    /// Whether a fault of this workload may take a transparent huge page on <paramref name="spec"/>: its anonymous
    /// mappings inherit the machine's mode unless its <see cref="ThpParam"/> says otherwise (thp_vma_allowable_order).
    /// An engine that must know how many frames one fault can take asks this.
    /// </summary>
    public bool MayMapHugePages(MachineSpec spec)
    {
        if (spec.Thp == TransparentHugepage.Never) return false;
        var hint = _params.ContainsKey(ThpParam) ? ThpHint() : Mm.VmFlags.None;
        return hint != Mm.VmFlags.NoHugePage && (hint == Mm.VmFlags.HugePage || spec.Thp == TransparentHugepage.Always);
    }

    /// <summary>The parameter that says whether a workload's anonymous mappings want THPs.</summary>
    protected const string ThpParam = "thp";

    /// <summary>The description of <see cref="ThpParam"/>.</summary>
    protected const string ThpHelp = "THP for the anonymous mappings: inherit (the machine's transparent_hugepage), on (madvise MADV_HUGEPAGE), off (MADV_NOHUGEPAGE)";

    /// <summary>The flag the <see cref="ThpParam"/> parameter adds to anonymous mappings: none, VM_HUGEPAGE or VM_NOHUGEPAGE.</summary>
    protected Mm.VmFlags ThpHint() => _params[ThpParam] switch
    {
        "inherit" => Mm.VmFlags.None,
        "on" => Mm.VmFlags.HugePage,
        "off" => Mm.VmFlags.NoHugePage,
        var s => throw new KernelConfigException($"param {ThpParam}", s, "must be inherit, on or off"),
    };

    protected long Long(string key, long min = 1, long max = long.MaxValue)
    {
        var s = _params[key];
        if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
            throw new KernelConfigException($"param {key}", s, $"must be an integer in {min}..{max}");
        return v;
    }

    protected const long MiB = 1L << 20;
    protected const long GiB = 1L << 30;
    /// <summary>Each task's private part of the address space: 64 GiB apart, from 16 TiB up (user half of x86-64).</summary>
    protected static long TaskArea(int task) => (16L << 40) + task * (64L << 30);
    /// <summary>The area shared by all tasks of the process.</summary>
    protected static readonly long SharedArea = 8L << 40;
}

/// <summary>The built-in workloads by name.</summary>
public static class Workloads
{
    public static readonly IReadOnlyList<string> Names = ["page-fault1", "page-fault3", "mmap-churn", "numa-migrate", "migrate-munmap", "mixed", "fork-fault"];

    /// <param name="exploring">Schedule exploration is on (the workload's <see cref="Workload.ExplorationDefaults"/> apply).</param>
    public static Workload Create(string name, IReadOnlyDictionary<string, string>? parameters = null, bool exploring = false)
    {
        Workload w = name switch
        {
            "page-fault1" => new PageFault1(),
            "page-fault3" => new PageFault3(),
            "mmap-churn" => new MmapChurn(),
            "numa-migrate" => new NumaMigrate(),
            "migrate-munmap" => new MigrateMunmap(),
            "mixed" => new Mixed(),
            "fork-fault" => new ForkFault(),
            _ => throw new KernelConfigException("workload", name, "unknown workload; expected one of " + string.Join(", ", Names)),
        };
        return w.Configure(parameters, exploring);
    }
}
