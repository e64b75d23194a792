using DistEmu.Silo;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace DistEmu.Grains.Tests;

/// <summary>An in-process Orleans cluster of <see cref="Silos"/> silos with DistEmu's silo configuration.</summary>
public abstract class ClusterFixture : IAsyncLifetime
{
    protected abstract short Silos { get; }
    /// <summary>Random placement for every grain (so that a run's grains spread over every silo and calls cross silos), instead of NUMA placement.</summary>
    protected virtual bool RandomPlacement => false;
    /// <summary>Idle activations collected after 2 s (the default is 15 min), so a test can outwait the collector.</summary>
    protected virtual bool QuickCollection => false;
    public TestCluster Cluster { get; private set; } = null!;
    public IGrainFactory Grains => Cluster.GrainFactory;

    private sealed class Configurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => SiloHosting.AddDistEmu(silo);
    }

    /// <summary>Random placement, so that a run's grains spread over every silo and calls cross silos: the default and, for the grains marked for it, instead of NUMA placement.</summary>
    private sealed class RandomPlacementConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            SiloHosting.AddDistEmu(silo, numaPlacement: false);
            silo.Services.AddSingleton<Orleans.Runtime.PlacementStrategy, Orleans.Runtime.RandomPlacement>();
        }
    }

    private sealed class QuickCollectionConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo) => silo.Configure<Orleans.Configuration.GrainCollectionOptions>(o =>
        {
            o.CollectionQuantum = TimeSpan.FromMilliseconds(500);
            o.CollectionAge = TimeSpan.FromSeconds(2);
        });
    }

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(Silos);
        if (RandomPlacement) builder.AddSiloBuilderConfigurator<RandomPlacementConfigurator>();
        else builder.AddSiloBuilderConfigurator<Configurator>();
        if (QuickCollection) builder.AddSiloBuilderConfigurator<QuickCollectionConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        // Membership and the grain directory must agree before a run: else a grain could briefly get two activations.
        await Cluster.WaitForLivenessToStabilizeAsync();
    }

    /// <summary>Grain calls received by each silo so far.</summary>
    public long[] CallsPerSilo() => Cluster.Silos.OfType<InProcessSiloHandle>()
        .Select(s => s.SiloHost.Services.GetRequiredService<GrainCallCounter>().Calls).ToArray();

    /// <summary>Grain calls received by each silo so far from another silo.</summary>
    public long[] CrossSiloCallsPerSilo() => Cluster.Silos.OfType<InProcessSiloHandle>()
        .Select(s => s.SiloHost.Services.GetRequiredService<GrainCallCounter>().CrossSilo).ToArray();

    /// <summary>The silos' addresses (parsable form), sorted as the NUMA placement sorts them.</summary>
    public string[] SortedSilos() => Cluster.Silos.Select(s => s.SiloAddress).Order().Select(a => a.ToParsableString()).ToArray();

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

/// <summary>Two silos with random placement (the grains of a run spread over both, calls cross silos).</summary>
public sealed class TwoSilos : ClusterFixture
{
    protected override short Silos => 2;
    protected override bool RandomPlacement => true;
}

/// <summary>Two silos with NUMA placement whose idle activations are collected after 2 s.</summary>
public sealed class TwoQuickCollectingSilos : ClusterFixture
{
    protected override short Silos => 2;
    protected override bool QuickCollection => true;
}

/// <summary>Two silos with DistEmu's NUMA placement.</summary>
public sealed class TwoNumaSilos : ClusterFixture
{
    protected override short Silos => 2;
}
