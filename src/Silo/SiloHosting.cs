using System.Net;
using System.Net.Sockets;
using DistEmu.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Runtime.Placement;

namespace DistEmu.Silo;

/// <summary>
/// The silo host. The embedded default is one silo in the calling process with localhost clustering, on free
/// loopback ports (so runs and tests never collide), logging only warnings; its grain factory is the client.
/// </summary>
public static class SiloHosting
{
    public static async Task<IHost> StartEmbeddedAsync(CancellationToken cancellationToken = default)
    {
        int siloPort = FreePort(), gatewayPort = FreePort();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "distemu", clusterId: $"distemu-{Environment.ProcessId}-{siloPort}");
            AddDistEmu(silo);
        });
        var host = builder.Build();
        await host.StartAsync(cancellationToken);
        return host;
    }

    /// <summary>
    /// What every DistEmu silo has: the grain-call counter (calls received, and of those sent from another silo) and
    /// the NUMA placement (DESIGN principle 6). With <paramref name="numaPlacement"/> false, grains marked for NUMA
    /// placement go to a random compatible silo instead (topology-blind placement, to compare against).
    /// </summary>
    public static ISiloBuilder AddDistEmu(ISiloBuilder silo, bool numaPlacement = true)
    {
        silo.Services.AddSingleton<GrainCallCounter>();
        silo.Services.AddSingleton<IIncomingGrainCallFilter>(sp => sp.GetRequiredService<GrainCallCounter>());
        silo.Services.AddSingleton<IOutgoingGrainCallFilter>(sp => sp.GetRequiredService<GrainCallCounter>());
        if (numaPlacement)
            silo.AddPlacementDirector<NumaPlacement, NumaPlacementDirector>();
        else
            silo.AddPlacementDirector<NumaPlacement>(_ => new AnySiloPlacementDirector());
        return silo;
    }

    /// <summary>Places on a random compatible silo.</summary>
    private sealed class AnySiloPlacementDirector : IPlacementDirector
    {
        public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
        {
            var silos = context.GetCompatibleSilos(target);
            return Task.FromResult(silos[Random.Shared.Next(silos.Length)]);
        }
    }

    public static long GrainCalls(this IHost host) => host.Services.GetRequiredService<GrainCallCounter>().Calls;

    /// <summary>Of <see cref="GrainCalls"/>, those sent from another silo.</summary>
    public static long CrossSiloGrainCalls(this IHost host) => host.Services.GetRequiredService<GrainCallCounter>().CrossSilo;

    public static IGrainFactory Grains(this IHost host) => host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
