using DistEmu.Silo;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace DistEmu.Bench;

/// <summary>
/// One embedded silo in this process, as <see cref="SiloHosting.StartEmbeddedAsync"/> builds it (localhost
/// clustering on free loopback ports, warnings only, <see cref="SiloHosting.AddDistEmu"/>), but started from the
/// bench assembly so its grains (the ping grains) load next to DistEmu's.
/// </summary>
public static class BenchHost
{
    public static async Task<IHost> StartAsync()
    {
        int siloPort = SiloHosting.FreePort(), gatewayPort = SiloHosting.FreePort();
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "distemu-bench", clusterId: $"distemu-bench-{Environment.ProcessId}-{siloPort}");
            SiloHosting.AddDistEmu(silo);
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
