using DistEmu.Kernel.Machine;
using DistEmu.Kernel.Sim;

namespace DistEmu.Kernel.Tests;

/// <summary>Bad input: one typed error naming the field and the value; nothing is half-built.</summary>
public class ConfigTests
{
    [Fact]
    public void Zero_cpus_is_rejected_naming_the_field()
    {
        var e = Assert.Throws<KernelConfigException>(() => new EmuMachine(new MachineSpec { CpusPerNode = 0 }));
        Assert.Equal("cpus_per_node", e.Field);
        Assert.Equal("0", e.Value);
    }

    [Fact]
    public void A_distance_matrix_that_is_not_square_is_rejected()
    {
        var e = Assert.Throws<KernelConfigException>(() => new MachineSpec { Nodes = 2, Distance = [[10, 20], [20]] }.Validate());
        Assert.Equal("distance[1]", e.Field);
    }

    [Fact]
    public void A_non_10_diagonal_is_rejected()
    {
        var e = Assert.Throws<KernelConfigException>(() => new MachineSpec { Nodes = 2, Distance = [[10, 20], [20, 11]] }.Validate());
        Assert.Equal("distance[1][1]", e.Field);
        Assert.Equal("11", e.Value);
    }

    [Fact]
    public void An_unknown_policy_names_the_valid_ones()
    {
        var e = Assert.Throws<KernelConfigException>(() => FaultPolicies.Parse("fastest"));
        Assert.Equal("policy", e.Field);
        Assert.Contains("merged", e.Reason);
    }

    [Fact]
    public void Unknown_workload_and_parameter_and_bad_values_are_rejected()
    {
        Assert.Equal("workload", Assert.Throws<KernelConfigException>(() => Workloads.Workloads.Create("page-fault9")).Field);
        Assert.Equal("param sizemb", Assert.Throws<KernelConfigException>(() => Workloads.Workloads.Create("page-fault1", new Dictionary<string, string> { ["sizemb"] = "1" })).Field);
        Assert.Equal("param size_mb", Assert.Throws<KernelConfigException>(() => Workloads.Workloads.Create("page-fault1", new Dictionary<string, string> { ["size_mb"] = "-3" })).Field);
    }

    [Fact]
    public void Migrate_munmap_unmaps_A_rarely_when_measuring_often_when_exploring_and_the_user_value_wins()
    {
        // Measuring the seed's claim needs munmaps of A (which stall every policy) rare; hunting S8 needs them often.
        Assert.Equal("128", Workloads.Workloads.Create("migrate-munmap").Params["same_vma_every"]);
        Assert.Equal("4", Workloads.Workloads.Create("migrate-munmap", exploring: true).Params["same_vma_every"]);
        var given = new Dictionary<string, string> { ["same_vma_every"] = "9" };
        Assert.Equal("9", Workloads.Workloads.Create("migrate-munmap", given, exploring: true).Params["same_vma_every"]);
        Assert.Equal(Workloads.Workloads.Create("page-fault1").Params, Workloads.Workloads.Create("page-fault1", exploring: true).Params);
    }

    [Fact]
    public void A_negative_cost_is_rejected()
    {
        var e = Assert.Throws<KernelConfigException>(() => new MachineSpec { Cost = CostModel.Default with { LockNs = -1 } }.Validate());
        Assert.Equal("cost.LockNs", e.Field);
    }

    [Fact]
    public void More_tasks_than_cpus_is_rejected()
    {
        var e = Assert.Throws<KernelConfigException>(() => SimRun.Run(new SimRunOptions { Machine = TestMachines.Spec(FaultPolicy.Merged), Tasks = 99 }));
        Assert.Equal("tasks", e.Field);
    }
}

/// <summary>A machine too small for the workload is refused before anything runs.</summary>
public class MemoryFitTests
{
    [Fact]
    public void A_workload_that_needs_more_memory_than_the_machine_has_is_refused_naming_memory()
    {
        var spec = TestMachines.Spec(FaultPolicy.Merged) with { MemoryPerNodeBytes = 64L << 20 };
        var e = Assert.Throws<KernelConfigException>(() => SimRun.Run(new SimRunOptions { Machine = spec, Workload = "page-fault1" }));
        Assert.Equal("memory", e.Field);
        Assert.Contains("page-fault1", e.Reason);
        // The same machine runs it with small enough mappings.
        var ok = SimRun.Run(new SimRunOptions { Machine = spec, Workload = "page-fault1", Params = new Dictionary<string, string> { ["size_mb"] = "4" }, OpsPerTask = 10 });
        Assert.Equal(0, ok.Machine.Sanitizer.Total);
    }
}
