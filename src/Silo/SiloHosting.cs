using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

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

    /// <summary>What every DistEmu silo has: the grain-call counter.</summary>
    public static ISiloBuilder AddDistEmu(ISiloBuilder silo)
    {
        silo.Services.AddSingleton<GrainCallCounter>();
        silo.Services.AddSingleton<IIncomingGrainCallFilter>(sp => sp.GetRequiredService<GrainCallCounter>());
        return silo;
    }

    public static long GrainCalls(this IHost host) => host.Services.GetRequiredService<GrainCallCounter>().Calls;

    public static IGrainFactory Grains(this IHost host) => host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>A free TCP port on loopback.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
