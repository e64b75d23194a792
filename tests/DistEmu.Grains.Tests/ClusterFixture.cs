using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace DistEmu.Grains.Tests;

/// <summary>An in-process Orleans cluster of <see cref="Silos"/> silos with DistEmu's silo configuration.</summary>
public abstract class ClusterFixture : IAsyncLifetime
{
    protected abstract short Silos { get; }
    public TestCluster Cluster { get; private set; } = null!;
    public IGrainFactory Grains => Cluster.GrainFactory;

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => SiloHosting.AddDistEmu(silo);
    }

    /// <summary>Random placement, so that a run's grains spread over every silo and calls cross silos (NUMA-affine placement is the cluster issue's).</summary>
    private sealed class RandomPlacementConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => silo.Services.AddSingleton<Orleans.Runtime.PlacementStrategy, Orleans.Runtime.RandomPlacement>();
    }

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(Silos);
        builder.AddSiloBuilderConfigurator<Configurator>();
        if (Silos > 1) builder.AddSiloBuilderConfigurator<RandomPlacementConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        // Membership and the grain directory must agree before a run: else a grain could briefly get two activations.
        await Cluster.WaitForLivenessToStabilizeAsync();
    }

    /// <summary>Grain calls received by each silo so far.</summary>
    public long[] CallsPerSilo() => Cluster.Silos.OfType<InProcessSiloHandle>()
        .Select(s => s.SiloHost.Services.GetRequiredService<GrainCallCounter>().Calls).ToArray();

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }
}

public sealed class OneSilo : ClusterFixture
{
    protected override short Silos => 1;
}

public sealed class TwoSilos : ClusterFixture
{
    protected override short Silos => 2;
}
