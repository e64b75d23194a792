using DistEmu.Abstractions;
using DistEmu.Grains.Support;
using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace DistEmu.Grains.Tests;

/// <summary>
/// Big machines on the orleans engine: a grain's memory does not grow with the machine (the run's spec is shared per
/// silo, per-CPU arrays are built as used), and the machine starts every CPU through its nodes.
/// </summary>
[Collection("one silo")]
public sealed class LaunchTests(OneSilo cluster)
{
    /// <summary><paramref name="nodes"/> × <paramref name="cpusPerNode"/> CPUs, 1 GiB per node.</summary>
    private static MachineSpec Machine(int nodes, int cpusPerNode) => new()
    {
        Name = $"{nodes}x{cpusPerNode}",
        Nodes = nodes,
        CpusPerNode = cpusPerNode,
        MemoryPerNodeBytes = 1L << 30,
        Distance = MachineSpec.UniformDistance(nodes),
        Policy = FaultPolicy.Merged,
    };

    private RunCatalog Catalog() => cluster.Cluster.Silos.OfType<InProcessSiloHandle>().Single().SiloHost.Services.GetRequiredService<RunCatalog>();

    private async Task<(string Run, MachineSpec Spec)> Configured(MachineSpec spec, long ops = 1)
    {
        string run = $"run-{Guid.NewGuid():N}";
        await cluster.Grains.GetGrain<IMachineGrain>(run).Configure(new RunConfig
        {
            RunId = run,
            MachineJson = MachineJson.Serialize(spec),
            Workload = "page-fault1",
            Params = new Dictionary<string, string> { ["size_mb"] = "1" },
            OpsPerTask = ops,
            Tasks = spec.Cpus,
        });
        return (run, spec);
    }

    [Fact]
    public async Task Every_grain_of_a_run_on_a_silo_shares_one_description_read_once()
    {
        var (run, spec) = await Configured(Machine(4, 16));
        var catalog = Catalog();
        long reads = catalog.Reads;
        // Every CPU and node grain of the run activated at once: each builds its kernel host as it activates. Then a full
        // collection, and the other half: the catalog holds runs weakly, so the grains alive must keep the description.
        Task Activate(IEnumerable<int> cpus) => Task.WhenAll(cpus.Select(cpu => cluster.Grains.GetGrain<ICpuGrain>(GrainKeys.Cpu(run, spec.NodeOfCpu(cpu), cpu)).Where()));
        await Task.WhenAll(Enumerable.Range(0, spec.Nodes).Select(node => cluster.Grains.GetGrain<INumaNodeGrain>(GrainKeys.Node(run, node)).Where())
            .Append(Activate(Enumerable.Range(0, spec.Cpus / 2))));
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        await Activate(Enumerable.Range(spec.Cpus / 2, spec.Cpus - spec.Cpus / 2));
        Assert.Equal(reads + 1, catalog.Reads); // one read from the machine grain for the 68 grains: one instance
        var first = await catalog.Get(cluster.Grains, run);
        var again = await catalog.Get(cluster.Grains, run);
        Assert.Same(first, again);
        Assert.Equal(reads + 1, catalog.Reads);
        Assert.Equal(run, first.Config.RunId);
        Assert.Equal(spec.Cpus, first.Spec.Cpus);
        // A kernel host takes the shared spec, it does not parse one of its own.
        var a = new KernelHost(first, cluster.Grains, GrainKeys.Cpu(run, 0, 0));
        var b = new KernelHost(first, cluster.Grains, GrainKeys.Cpu(run, 1, 16));
        Assert.Same(first.Spec, a.Spec);
        Assert.Same(a.Spec, b.Spec);
        Assert.Same(a.Spec, a.Machine.Spec);
    }

    [Fact]
    public async Task A_grains_machine_builds_no_per_cpu_state_until_used()
    {
        var (run, _) = await Configured(Machine(64, 64));
        var host = new KernelHost(await Catalog().Get(cluster.Grains, run), cluster.Grains, GrainKeys.Cpu(run, 63, 4095));
        Assert.Equal(4096, host.Machine.Spec.Cpus);
        Assert.Equal(0, host.Machine.TlbsBuilt);
        var tlb = host.Machine.Tlb(4095);
        Assert.Same(tlb, host.Machine.Tlb(4095));
        Assert.Equal(1, host.Machine.TlbsBuilt); // its own CPU's, not an array of the machine's 4,096
        Assert.Throws<ArgumentOutOfRangeException>(() => host.Machine.Tlb(4096));
    }

    [Fact]
    public async Task A_large_machine_starts_every_cpu_through_its_nodes_and_counts_as_the_sim_engine()
    {
        const long ops = 50; // page-fault1, 1 MiB: an mmap, then 49 first touches
        var (run, spec) = await Configured(Machine(8, 64), ops);
        var machine = cluster.Grains.GetGrain<IMachineGrain>(run);
        await machine.Start();
        // Start returned: every task was started (or has already finished); each reports done to the machine.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        RunStatus status;
        while ((status = await machine.Status()).Done < status.Tasks && DateTime.UtcNow < until)
            await Task.Delay(20);
        Assert.Equal(spec.Cpus, status.Tasks);
        Assert.Equal(spec.Cpus, status.Done);
        Assert.Null(status.Error);
        var stats = await machine.Collect();
        Assert.Empty(stats.Lost);
        var m = StatsCodec.ToMachine(spec, true, stats);
        var sim = SimRun.Run(new SimRunOptions
        {
            Machine = spec,
            Workload = "page-fault1",
            Params = new Dictionary<string, string> { ["size_mb"] = "1" },
            OpsPerTask = ops,
        });
        Assert.Equal(spec.Cpus * (ops - 1), m.VmStat.pgfault);
        Assert.Equal(sim.Machine.VmStat.pgfault, m.VmStat.pgfault);
        Assert.Equal(sim.Machine.VmStat.Faults, m.VmStat.Faults);
        Assert.Equal(spec.Cpus * ops, stats.Ops);
        Assert.True(m.Frames.Conserved, m.Frames.ToString());
        Assert.Equal(0, m.Sanitizer.Total);
    }
}
